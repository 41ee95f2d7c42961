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
        sa.Index("ix_audit_events_account_subject", "account_id", "subject_user_id", "created_at",
                 "id"),
        sa.Index("ix_audit_events_account_actor", "account_id", "actor_user_id", "created_at", "id"),
        sa.Index("ix_audit_events_account_action", "account_id", "action", "created_at", "id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE")
    )
    # Plain ids (no foreign keys): events outlive the people they name, who are then anonymised.
    actor_user_id: so.Mapped[int | None] = so.mapped_column(index=True)
    subject_user_id: so.Mapped[int | None] = so.mapped_column(index=True)
    # Name snapshots so the trail stays readable; the purge replaces them with "deleted user #id".
    actor_label: so.Mapped[str | None] = so.mapped_column(sa.String(300))
    subject_label: so.Mapped[str | None] = so.mapped_column(sa.String(300))
    action: so.Mapped[str] = so.mapped_column(sa.String(64))
    details: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)
    ip: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
