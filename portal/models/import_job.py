"""ImportJob: an uploaded CSV held between its preview and its import."""
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import utcnow

# uploaded (previewed, waiting for the admin) -> running -> done | failed | interrupted (its run,
# jobs.id = run_id, lost its lease: the process died, nothing was written; it may run again).
STATES = ("uploaded", "running", "done", "failed", "interrupted")


class ImportJob(Base):
    __tablename__ = "import_jobs"
    __table_args__ = (sa.Index("ix_import_jobs_account_owner", "account_id", "membership_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    # The admin who uploaded it; only they see it (another admin gets 404 like another account).
    membership_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("memberships.id", ondelete="CASCADE")
    )
    # The client's file name, shown only (escaped); the bytes live in ``data``, never on a path
    # built from it. In the database rather than the instance folder so that any app server of
    # a scaled-out deployment can serve the preview and run the import.
    filename: so.Mapped[str] = so.mapped_column(sa.String(200))
    data: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary)
    size: so.Mapped[int] = so.mapped_column(default=0)
    rows: so.Mapped[int] = so.mapped_column(default=0)
    state: so.Mapped[str] = so.mapped_column(sa.String(16), default="uploaded")
    invite: so.Mapped[bool] = so.mapped_column(default=True)
    # The encoding the admin chose under Read as … (None: the one the bytes point to).
    read_as: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    # Update existing users: people already in the account get the file's name, phone, groups.
    update_existing: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    # After the import: Download rejected rows and the import report (CSV bytes).
    rejected_csv: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary, deferred=True)
    report_csv: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary, deferred=True)
    # "N users imported, K skipped" and the counts behind it.
    result: so.Mapped[dict[str, Any] | None] = so.mapped_column(sa.JSON)
    error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # The background job of the latest run (services/jobs.py), its lease telling whether it lives.
    # No foreign key: finished jobs are pruned, and an import outlives its run.
    run_id: so.Mapped[int | None]
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    expires_at: so.Mapped[datetime]
    started_at: so.Mapped[datetime | None]
    finished_at: so.Mapped[datetime | None]
