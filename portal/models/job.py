"""Job: one piece of background work, claimed under a short renewable lease."""
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import utcnow

# queued -> running (leased) -> done | failed. A running job whose lease has passed is claimed
# again (a kind that retries) or ends failed as interrupted (one that does not).
STATES = ("queued", "running", "done", "failed")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (sa.Index("ix_jobs_due", "state", "run_after"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # What to run: a key of services/jobs.py: KINDS.
    kind: so.Mapped[str] = so.mapped_column(sa.String(32))
    # Its arguments: ids and choices, never secrets.
    payload: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)
    account_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    state: so.Mapped[str] = so.mapped_column(sa.String(16), default="queued")
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    run_after: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    # Who holds the job, and until when: renewed by the holder's heartbeat while it lives.
    lease_owner: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    lease_until: so.Mapped[datetime | None]
    # Where it is, readable by every process: phase and fraction done (0..1).
    phase: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    fraction: so.Mapped[float | None] = so.mapped_column(sa.Float)
    result: so.Mapped[dict[str, Any] | None] = so.mapped_column(sa.JSON)
    error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    started_at: so.Mapped[datetime | None]
    finished_at: so.Mapped[datetime | None]
