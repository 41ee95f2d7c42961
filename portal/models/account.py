"""Account: one organisation (tenant) and its settings."""
import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import Timestamped


class Account(Timestamped, Base):
    __tablename__ = "accounts"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    # Lower-cased name: account names are unique case-insensitively.
    name_key: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    # Set by the operator (CLI); admins see it read-only.
    device_limit: so.Mapped[int] = so.mapped_column(default=3)
    password_min_length: so.Mapped[int] = so.mapped_column(default=12)
    # Optional character-class rule; off by default (NIST prefers length and a blocklist).
    password_require_classes: so.Mapped[bool] = so.mapped_column(default=False)
    # Who must use a second factor: "off", "admins" or "everyone" (the strictest account wins).
    second_factor_rule: so.Mapped[str] = so.mapped_column(
        sa.String(16), default="off", server_default="off"
    )
    invite_valid_hours: so.Mapped[int] = so.mapped_column(default=72)
    sender_name: so.Mapped[str | None] = so.mapped_column(sa.String(120))

    def __repr__(self) -> str:
        return f"<Account {self.id} {self.name!r}>"
