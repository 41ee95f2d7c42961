"""AuditEvent: who did what to whom, when, from where."""
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    # The audit page (services/audit_trail.py) pages newest first by (created_at, id), keyset:
    # each filter walks an index that starts with the account and ends with that order.
    __table_args__ = (
        sa.Index("ix_audit_events_account_time", "account_id", "created_at", "id"),
        # Who and whom lead their indexes: the audit page walks (account, person) newest first
        # and the purge and csv_check find a person's events in every account through the same
        # index; one index per link instead of two (account first, and the id alone), so each
        # event written (an import writes 100,000) and each one a purge rewrites costs two
        # index entries fewer (migration 0025). On PostgreSQL they hold only the events that
        # name someone: the purge's erasure sets the link NULL, and that new row version then
        # enters neither of its link's indexes.
        sa.Index("ix_audit_events_subject", "subject_user_id", "account_id", "created_at", "id",
                 postgresql_where=sa.text("subject_user_id IS NOT NULL")),
        sa.Index("ix_audit_events_actor", "actor_user_id", "account_id", "created_at", "id",
                 postgresql_where=sa.text("actor_user_id IS NOT NULL")),
        sa.Index("ix_audit_events_account_action", "account_id", "action", "created_at", "id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE")
    )
    # Plain ids (no foreign keys): events outlive the people they name, who are then anonymised.
    actor_user_id: so.Mapped[int | None]
    subject_user_id: so.Mapped[int | None]
    # Name snapshots so the trail stays readable; the purge replaces them with "deleted user #id".
    actor_label: so.Mapped[str | None] = so.mapped_column(sa.String(300))
    subject_label: so.Mapped[str | None] = so.mapped_column(sa.String(300))
    action: so.Mapped[str] = so.mapped_column(sa.String(64))
    details: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)
    ip: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
