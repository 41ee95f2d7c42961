"""User: one person, shared by every account they belong to."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import Timestamped


class User(Timestamped, Base):
    __tablename__ = "users"
    # Name order with the e-mail alongside: the member picker's search walks it, never the table.
    __table_args__ = (sa.Index("ix_users_name_email", "name", "email"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # Normalised by email-validator and lower-cased, so the unique index is case-insensitive.
    email: so.Mapped[str] = so.mapped_column(sa.String(254), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(200))
    phone: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    password_hash: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    password_changed_at: so.Mapped[datetime | None]
    # Set when an account's stricter policy no longer fits the password; checked at sign-in.
    must_change_password: so.Mapped[bool] = so.mapped_column(default=False)
    # Consecutive failed sign-ins; forgotten 12 hours after the last one (or on success).
    failed_logins: so.Mapped[int] = so.mapped_column(default=0)
    failed_login_at: so.Mapped[datetime | None]
    throttled_until: so.Mapped[datetime | None]
    last_seen_at: so.Mapped[datetime | None] = so.mapped_column(index=True)
    # Optimistic lock: an edit based on a stale copy is refused, not silently applied.
    version: so.Mapped[int] = so.mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    # Flask-Login protocol; sessions are validated against Device rows (portal.session).
    is_active = True
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"
