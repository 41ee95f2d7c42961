"""OutboxMessage: an e-mail to send, written in the transaction that caused it."""
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import utcnow

# pending -> sending (claimed) -> sent | failed; a temporary failure goes back to pending.
STATES = ("pending", "sending", "sent", "failed")


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        sa.Index("ix_outbox_messages_due", "state", "next_attempt_at"),
        # Outgoing mail: one account's messages newest first, by state, and its totals.
        sa.Index("ix_outbox_messages_account_state", "account_id", "state", "id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # Found by ix_outbox_messages_account_state, which starts with it.
    account_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE")
    )
    # The person the mail is about (for the purge); the recipient address is kept separately.
    user_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The membership an invitation was for, so a refusal can mark it "invite failed".
    # Also set on mail about a membership sent to someone else (a refused invitation), so the
    # purge finds and removes it with the membership.
    membership_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("memberships.id", ondelete="SET NULL"), index=True
    )
    kind: so.Mapped[str] = so.mapped_column(sa.String(32))
    to_addr: so.Mapped[str] = so.mapped_column(sa.String(254))
    sender_name: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    subject: so.Mapped[str] = so.mapped_column(sa.String(300))
    # Rendered when queued; or None with ``context`` set, rendered when sent (bulk imports:
    # storing 100,000 rendered bodies costs more than the whole rest of the import).
    body_text: so.Mapped[str | None] = so.mapped_column(sa.Text)
    body_html: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # Template variables of templates/email/<kind> for a message rendered when sent.
    context: so.Mapped[dict[str, Any] | None] = so.mapped_column(sa.JSON)
    state: so.Mapped[str] = so.mapped_column(sa.String(16), default="pending")
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    next_attempt_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    claimed_by: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    claimed_at: so.Mapped[datetime | None]
    # The claim's lease: renewed by the deliverer's heartbeat; once passed, the message is due
    # again (its deliverer died). None on a message claimed before leases existed: due.
    lease_until: so.Mapped[datetime | None]
    last_error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    sent_at: so.Mapped[datetime | None]
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
