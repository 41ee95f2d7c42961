"""A person's own profile: name and phone, password change, and what they take part in."""
from dataclasses import dataclass

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Device
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import Step
from portal.models import Taskstream
from portal.models import User
from portal.services import accounts
from portal.services import audit
from portal.services import auth
from portal.services import mail
from portal.services import passwords
from portal.services import people
from portal.services.errors import ServiceError

WRONG_CURRENT = "The current password is wrong."


@dataclass(frozen=True)
class Overview:
    """Everything a device app shows about the signed-in person."""

    user: User
    memberships: list[Membership]
    groups: list[Group]
    taskstreams: list[Taskstream]


def update_profile(current: Device, *, name: str, phone: str | None) -> User:
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
    ended = auth.revoke_all(user, "password_changed", except_device_id=current.id)
    mail.enqueue(
        "password_changed",
        user.email,
        "Your password was changed",
        user_id=user.id,
        name=user.name,
        url=mail.link("/forgot-password"),
        kept_device=current.name,
    )
    audit.record(None, "password.changed", subject=user, actor_user=user,
                 account_id=current.account_id, devices_logged_out=ended)
    db.session.commit()
    return ended


def overview(user: User) -> Overview:
    """Return the person's profile, live accounts, groups and the taskstreams they take part in."""
    live = sa.select(Membership.id).where(
        Membership.user_id == user.id, Membership.deleted_at.is_(None)
    )
    group_ids = sa.select(GroupMember.group_id).where(GroupMember.membership_id.in_(live))
    groups = db.session.scalars(
        sa.select(Group).where(Group.id.in_(group_ids)).order_by(Group.account_id, Group.name)
    )
    streams = db.session.scalars(
        sa.select(Taskstream)
        .where(Taskstream.id.in_(sa.select(Step.taskstream_id).where(Step.group_id.in_(group_ids))))
        .order_by(Taskstream.account_id, Taskstream.name)
    )
    return Overview(
        user=user,
        memberships=accounts.live_memberships(user),
        groups=list(groups),
        taskstreams=list(streams),
    )
