"""User: one person, shared by every account they belong to."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import Timestamped


class User(Timestamped, Base):
    __tablename__ = "users"
    # No index on (name, email) nor on last_seen_at: nothing reads users in those orders (the
    # lists and the member picker read the sort keys of memberships, search reads user_search)
    # and every import, sign-in and purge paid for them (migration 0024).

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
    last_seen_at: so.Mapped[datetime | None]
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
