"""ActionToken: an invitation or password-reset link, stored hashed."""
import enum
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import Timestamped



class TokenPurpose(enum.StrEnum):
    """What a link in an e-mail is for."""

    INVITE = "invite"
    RESET = "reset"


class ActionToken(Timestamped, Base):
    __tablename__ = "action_tokens"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # Invitations are bound to the account that invited; resets to none.
    account_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE")
    )
    purpose: so.Mapped[str] = so.mapped_column(sa.String(16))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    # Digest of the password hash when issued: any password change invalidates the link.
    password_stamp: so.Mapped[str] = so.mapped_column(sa.String(16))
    expires_at: so.Mapped[datetime]
    used_at: so.Mapped[datetime | None]
