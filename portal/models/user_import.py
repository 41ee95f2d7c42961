"""UserImport: one import of users (CSV or workbook), what it wrote, and its undo."""
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import utcnow


class UserImport(Base):
    """Who imported which file when, its counts and report; what Undo import puts back.

    The rows it wrote carry its id (memberships, group_members and groups.import_id, no
    foreign key: the import writes them set-wise and nothing joins on it but Undo import).
    """

    __tablename__ = "user_imports"
    __table_args__ = (sa.Index("ix_user_imports_account_created", "account_id", "created_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    # The admin who imported (None for the operator's CLI or once they are purged).
    membership_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("memberships.id", ondelete="SET NULL"), index=True)
    actor_name: so.Mapped[str] = so.mapped_column(sa.String(200))
    source: so.Mapped[str] = so.mapped_column(sa.String(16))
    filename: so.Mapped[str] = so.mapped_column(sa.String(200))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    # ImportResult.as_dict(): the counts and the one-line summary.
    result: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON)
    # People the import updated, as they were before: [{"user_id", "name", "phone"}].
    previous: so.Mapped[list[dict[str, Any]]] = so.mapped_column(sa.JSON, default=list)
    report_csv: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary, deferred=True)
    undone_at: so.Mapped[datetime | None]
    undone_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    undo_result: so.Mapped[dict[str, Any] | None] = so.mapped_column(sa.JSON)
