"""A person's own profile: name and phone, password change, and what they take part in."""
from dataclasses import dataclass

from portal.extensions import db
from portal.models import Device
from portal.models import EndReason
from portal.models import Group
from portal.models import Membership
from portal.models import User
from portal.services import accounts
from portal.services import audit
from portal.services import auth
from portal.services import devices
from portal.services import passwords
from portal.services import people
from portal.services import taskstreams
from portal.services.errors import ServiceError
from portal.services.taskstreams import Reach

WRONG_CURRENT = "The current password is wrong."


@dataclass(frozen=True)
class OwnAccount:
    """One of the person's accounts as they see it: their role, groups and taskstreams there."""

    membership: Membership
    groups: list[Group]
    taskstreams: list[Reach]


@dataclass(frozen=True)
class Overview:
    """Everything a device app shows about the signed-in person (and the web page, by account)."""

    user: User
    memberships: list[Membership]
    groups: list[Group]
    taskstreams: list[Reach]
    accounts: list[OwnAccount]


@dataclass(frozen=True)
class OwnPage:
    """The person's own page (/account): the overview /api/v1/me answers, and their devices."""

    overview: Overview
    devices: devices.DeviceList


def update_own_profile(current: Device, *, name: str, phone: str | None) -> User:
    """Change the signed-in person's own name and phone number."""
    user = db.session.get(User, current.user_id)
    name = people.clean_name(name)
    phone = people.normalise_phone(phone)
    changes = {
        key: {"old": getattr(user, key), "new": value}
        for key, value in (("name", name), ("phone", phone))
        if getattr(user, key) != value
    }
    if changes:
        user.name = name
        user.phone = phone
        audit.record(None, "profile.updated", subject=user, actor_user=user,
                     account_id=current.account_id, changes=changes)
        db.session.commit()
    return user


def change_password(current: Device, *, current_password: str, new_password: str) -> int:
    """Change the signed-in person's password; every other device is logged out.

    Returns how many other devices were logged out. The person stays signed in here.
    """
    user = db.session.get(User, current.user_id)
    if not passwords.verify(user, current_password or ""):
        raise ServiceError(WRONG_CURRENT, "current_password")
    if new_password == current_password:
        raise ServiceError("Choose a password different from the current one.", "password")
    passwords.check_new_password(user, new_password)
    passwords.store_password(user, new_password)
    ended = auth.revoke_all(user, EndReason.PASSWORD_CHANGED, except_device_id=current.id)
    auth.notify_password_changed(user, kept_device=current.name)
    audit.record(None, "password.changed", subject=user, actor_user=user,
                 account_id=current.account_id, devices_logged_out=ended)
    db.session.commit()
    return ended


def overview(user: User) -> Overview:
    """Return the person's profile, live accounts, groups and the taskstreams they take part in."""
    memberships = accounts.live_memberships(user)
    # Each live membership acts as its own scope: one account's groups and taskstreams each.
    seen = [taskstreams.participates_in(m, m.id) for m in memberships]
    return Overview(
        user=user,
        memberships=memberships,
        groups=[g for p in seen for g in p.groups],
        taskstreams=[r for p in seen for r in p.taskstreams],
        accounts=[OwnAccount(m, p.groups, p.taskstreams) for m, p in zip(memberships, seen)],
    )


def own_page(current: Device) -> OwnPage:
    """Return what the signed-in person sees of themselves on the web: the same overview as the
    app's /api/v1/me (profile, accounts, groups, taskstreams and steps) and their devices."""
    return OwnPage(overview=overview(db.session.get(User, current.user_id)),
                   devices=devices.own_devices(current))
