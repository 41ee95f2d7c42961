"""Groups: create them and put memberships in them (set-wise)."""
from collections.abc import Sequence

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.services import audit
from portal.services import scope
from portal.services.errors import ServiceError


def clean_group_name(name: str) -> str:
    """Return a trimmed group name or raise ServiceError."""
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError("A group name is required.", "name")
    if len(name) > 120:
        raise ServiceError("The group name is longer than 120 characters.", "name")
    return name


def create_group(actor, name: str, member_ids: Sequence[int] = ()) -> Group:
    """Create a group in the actor's account, optionally with members."""
    name = clean_group_name(name)
    exists = db.session.scalar(
        scope.in_account(sa.select(Group.id), Group, actor).where(Group.name_key == name.lower())
    )
    if exists:
        raise ServiceError(f"A group named {name!r} already exists.", "name")
    group = Group(account_id=actor.account_id, name=name, name_key=name.lower())
    db.session.add(group)
    db.session.flush()
    added = insert_members(actor, [group.id], member_ids) if member_ids else 0
    audit.record(actor, "group.created", name=name, members=added)
    db.session.commit()
    return group


def insert_members(actor, group_ids: Sequence[int], membership_ids: Sequence[int]) -> int:
    """Add memberships to groups in one INSERT ... SELECT, skipping pairs already there.

    Ids outside the actor's account are ignored. Does not commit: callers own the transaction.
    """
    gids = scope.ids_in_account(Group, group_ids, actor)
    mids = scope.ids_in_account(Membership, membership_ids, actor)
    if not gids or not mids:
        return 0
    pairs = (
        sa.select(Group.id, Membership.id)
        .select_from(Group)
        .join(Membership, sa.true())  # every chosen group × every chosen membership
        .where(Group.id.in_(gids), Membership.id.in_(mids))
        .where(
            ~sa.exists().where(
                GroupMember.group_id == Group.id, GroupMember.membership_id == Membership.id
            )
        )
    )
    result = db.session.execute(
        sa.insert(GroupMember).from_select(["group_id", "membership_id"], pairs)
    )
    return result.rowcount or 0
