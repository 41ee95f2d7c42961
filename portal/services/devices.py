"""Devices: list a person's sessions and log them out (admins in User Details, people in /account)."""
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from portal.extensions import db
from portal.models import Device
from portal.models import DeviceKind
from portal.models import EndReason
from portal.models import Membership
from portal.models import User
from portal.models import utcnow
from portal.services import audit
from portal.services import auth
from portal.services import people
from portal.services import scope
from portal.services.errors import NotFound
from portal.services.errors import ServiceError

KIND_LABELS = {DeviceKind.WEB: "Web", DeviceKind.IPAD: "iPad", DeviceKind.IPHONE: "iPhone",
               DeviceKind.APP: "Other app"}
END_LABELS = {
    EndReason.LOGOUT: "Logged out",
    EndReason.DEVICE_LIMIT: "Logged out by the device limit",
    EndReason.PASSWORD_CHANGED: "Logged out when the password changed",
    EndReason.DELETED: "Logged out when the access was removed",
    EndReason.EXPIRED: "Session expired",
}
# Most rows one list shows (live devices are at most the limit; the rest is recent history).
LIST_LIMIT = 50


@dataclass(frozen=True)
class DeviceRow:
    """One device as the lists show it."""

    device: Device
    ended_by: str | None = None
    current: bool = False

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.device.kind, self.device.kind)

    @property
    def ended_label(self) -> str | None:
        reason = self.device.revoked_reason
        if self.device.revoked_at is None:
            return None
        if reason == EndReason.ADMIN:
            return f"Logged out by {self.ended_by or 'an administrator'}"
        return END_LABELS.get(reason or "", "Logged out")


@dataclass(frozen=True)
class DeviceList:
    """A person's live devices (most recently used first) and recently ended ones.

    For an admin, only the sessions signed in to the admin's account; the person's live
    sessions anywhere else are only counted (``elsewhere``).
    """

    user: "User | people.SeenPerson"
    live: list[DeviceRow]
    ended: list[DeviceRow]
    history_days: int
    elsewhere: int = 0
    #: Live and ended together as a list shows them: newest sign-in first, an order that never
    #: changes when one is logged out or used (a row never moves under the pointer).
    rows: list[DeviceRow] = field(default_factory=list)


def _list(user: User, current_id: int | None = None,
          account_id: int | None = None) -> DeviceList:
    """List the person's devices; with ``account_id`` only those signed in to that account."""
    days = current_app.config["DEVICE_HISTORY_DAYS"]
    since = utcnow() - timedelta(days=days)
    ender = so.aliased(User)
    in_account = Device.account_id == account_id if account_id is not None else sa.true()
    rows = db.session.execute(
        sa.select(Device, ender.name)
        .outerjoin(ender, ender.id == Device.revoked_by_id)
        .where(
            Device.user_id == user.id,
            in_account,
            sa.or_(Device.revoked_at.is_(None), Device.revoked_at >= since),
        )
        .order_by(Device.revoked_at.is_not(None), Device.revoked_at.desc(),
                  Device.last_seen_at.desc(), Device.id.desc())
        .limit(LIST_LIMIT)
    ).all()
    items = [DeviceRow(d, ended_by=name, current=d.id == current_id) for d, name in rows]
    elsewhere = 0
    if account_id is not None:
        elsewhere = db.session.scalar(
            sa.select(sa.func.count(Device.id)).where(
                Device.user_id == user.id,
                Device.revoked_at.is_(None),
                sa.or_(Device.account_id.is_(None), Device.account_id != account_id),
            )
        )
    return DeviceList(
        user=user,
        live=[r for r in items if r.device.revoked_at is None],
        ended=[r for r in items if r.device.revoked_at is not None],
        history_days=days,
        elsewhere=elsewhere,
        rows=sorted(items, key=lambda r: (r.device.created_at, r.device.id), reverse=True),
    )


def devices_of(actor, membership_id, current_device_id: int | None = None) -> DeviceList:
    """List a user's sessions signed in to the actor's account (NotFound for anyone else);
    their sessions in other accounts are only counted."""
    membership = scope.get_in_account(Membership, membership_id, actor)
    listing = _list(membership.user, current_device_id, account_id=actor.account_id)
    # Someone known elsewhere who has not accepted yet: nothing of their other sessions.
    return replace(listing, user=people.SeenPerson.of(membership),
                   elsewhere=0 if membership.awaiting else listing.elsewhere)


def _live_device(user_id: int, device_id, account_id: int | None = None) -> Device:
    number = scope.parse_id(device_id)
    in_account = Device.account_id == account_id if account_id is not None else sa.true()
    device = db.session.scalar(
        sa.select(Device).where(
            Device.id == number, Device.user_id == user_id, Device.revoked_at.is_(None),
            in_account,
        )
    ) if number is not None else None
    if device is None:
        raise NotFound("That device is not signed in any more.")
    return device


def revoke_device(actor, membership_id, device_id) -> Device:
    """Log out one session of a user signed in to the actor's account, at once; audited."""
    membership = scope.get_in_account(Membership, membership_id, actor)
    device = _live_device(membership.user_id, device_id, actor.account_id)
    device.revoked_at = utcnow()
    device.revoked_reason = EndReason.ADMIN
    device.revoked_by_id = actor.user_id
    audit.record(actor, "device.revoked", subject=membership.user, device=device.name,
                 kind=device.kind, device_id=device.id)
    db.session.commit()
    return device


def own_devices(current: Device) -> DeviceList:
    """List the devices of the person signed in on ``current``."""
    return _list(db.session.get(User, current.user_id), current.id)


def log_out_own_device(current: Device, device_id) -> Device:
    """Log out another device of the person signed in on ``current``."""
    if scope.parse_id(device_id) == current.id:
        raise ServiceError("This is the device you are using: sign out instead.")
    device = _live_device(current.user_id, device_id)
    user = db.session.get(User, current.user_id)
    device.revoked_at = utcnow()
    device.revoked_reason = EndReason.LOGOUT
    device.revoked_by_id = user.id
    audit.record(None, "device.logged_out", subject=user, actor_user=user,
                 account_id=current.account_id, device=device.name, device_id=device.id)
    db.session.commit()
    return device


def log_out_everywhere_else(current: Device) -> int:
    """Log out every other device of the person signed in on ``current``; returns how many."""
    user = db.session.get(User, current.user_id)
    ended = auth.revoke_all(user, EndReason.LOGOUT, except_device_id=current.id, by=user)
    audit.record(None, "device.logged_out_elsewhere", subject=user, actor_user=user,
                 account_id=current.account_id, devices=ended)
    db.session.commit()
    return ended
