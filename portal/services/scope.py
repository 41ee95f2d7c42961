"""The one account-scoping helper: every lookup of account-owned data goes through here."""
from typing import Any
from typing import TypeVar

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import Step
from portal.models import Taskstream
from portal.services.errors import OutOfScope

M = TypeVar("M")


def parse_id(value: Any) -> int | None:
    """Return a positive database id from request input, or None."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    # Ids are 32-bit integer columns: a larger number names nothing (and must not reach
    # PostgreSQL, which refuses it as out of range).
    return number if 0 < number < 2**31 else None


def parse_ids(idents) -> list[int]:
    """Keep the values that can be ids (positive 32-bit integers), without duplicates."""
    return sorted({n for n in (parse_id(i) for i in idents) if n is not None})


def in_account(stmt: sa.Select, model: type, actor) -> sa.Select:
    """Restrict ``stmt`` (selecting ``model``) to the actor's account."""
    if model is Step:
        return stmt.join(Taskstream, Taskstream.id == Step.taskstream_id).where(
            Taskstream.account_id == actor.account_id
        )
    if model is GroupMember:
        return stmt.join(Group, Group.id == GroupMember.group_id).where(
            Group.account_id == actor.account_id
        )
    return stmt.where(model.account_id == actor.account_id)


def get_in_account(model: type[M], ident: Any, actor, *, include_deleted: bool = False) -> M:
    """Return the object with this id in the actor's account, or raise OutOfScope (a NotFound
    the edge records as a refused request)."""
    number = parse_id(ident)
    if number is None:
        raise OutOfScope(model.__name__, ident)
    stmt = in_account(sa.select(model).where(model.id == number), model, actor)
    if model is Membership and not include_deleted:
        stmt = stmt.where(Membership.deleted_at.is_(None))
    obj = db.session.scalars(stmt).first()
    if obj is None:
        raise OutOfScope(model.__name__, number)
    return obj


def ids_in_account(model: type, idents, actor, *, include_deleted: bool = False) -> list[int]:
    """Keep only the ids that name objects of the actor's account (others are ignored)."""
    numbers = parse_ids(idents)
    if not numbers:
        return []
    stmt = in_account(sa.select(model.id).where(model.id.in_(numbers)), model, actor)
    if model is Membership and not include_deleted:
        stmt = stmt.where(Membership.deleted_at.is_(None))
    return list(db.session.scalars(stmt))
