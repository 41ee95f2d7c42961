"""Device: one signed-in session of a person (browser or app), checked on every request."""
import enum
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import utcnow
from portal.models.user import User



class DeviceKind(enum.StrEnum):
    """What a session was signed in from."""

    WEB = "web"
    IPAD = "ipad"
    IPHONE = "iphone"
    APP = "app"


class EndReason(enum.StrEnum):
    """How a session ended (devices.revoked_reason), shown in the device list."""

    LOGOUT = "logout"
    DEVICE_LIMIT = "device_limit"
    ADMIN = "admin"
    PASSWORD_CHANGED = "password_changed"
    DELETED = "deleted"
    EXPIRED = "expired"



class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (sa.Index("ix_devices_user_live", "user_id", "revoked_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    # The account this session acts in (chosen at sign-in), held server-side.
    account_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("accounts.id", ondelete="SET NULL")
    )
    # SHA-256 of the random session or bearer token; the token itself is never stored.
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16), default=DeviceKind.WEB.value)
    name: so.Mapped[str] = so.mapped_column(sa.String(200))
    app_version: so.Mapped[str | None] = so.mapped_column(sa.String(40))
    # The app's own device identifier (API sign-ins).
    client_device_id: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    ip: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    last_seen_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    expires_at: so.Mapped[datetime]
    revoked_at: so.Mapped[datetime | None]
    revoked_reason: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    revoked_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )

    # Loaded in the same query as the device: the per-request check is one indexed read.
    user: so.Mapped[User] = so.relationship(foreign_keys=[user_id], lazy="joined", innerjoin=True)

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None
