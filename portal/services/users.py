"""Users of an account: the list query and the selection that every bulk action acts on."""
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Membership
from portal.models import User
from portal.services import scope
from portal.services.errors import ServiceError

PAGE_SIZE = 50


@dataclass(frozen=True)
class UserFilter:
    """What the Users list is narrowed to (search text, group id, state)."""

    q: str = ""
    group_id: int | None = None
    state: str | None = None


@dataclass(frozen=True)
class Selection:
    """The users a bulk action acts on: chosen ids, or everything matching a filter."""

    ids: Sequence[int] = field(default_factory=tuple)
    all_matching: bool = False
    filter: UserFilter = field(default_factory=UserFilter)


@dataclass
class UserPage:
    rows: list[Membership]
    total: int
    page: int


def filtered(actor, user_filter: UserFilter) -> sa.Select:
    """Return SELECT memberships.id of the account's live users matching the filter."""
    stmt = scope.in_account(sa.select(Membership.id), Membership, actor).where(
        Membership.deleted_at.is_(None)
    )
    if user_filter.q:
        pattern = f"%{user_filter.q.strip().lower()}%"
        stmt = stmt.join(User, User.id == Membership.user_id).where(
            sa.or_(sa.func.lower(User.name).like(pattern), User.email.like(pattern))
        )
    if user_filter.state:
        stmt = stmt.where(Membership.invite_state == user_filter.state)
    if user_filter.group_id:
        from portal.models import GroupMember

        stmt = stmt.where(
            Membership.id.in_(
                sa.select(GroupMember.membership_id).where(
                    GroupMember.group_id == user_filter.group_id
                )
            )
        )
    return stmt


def selected_ids(actor, selection: Selection) -> sa.Select:
    """Return SELECT memberships.id of the selection, scoped to the actor's account.

    Usable as a subquery, so bulk actions work set-wise however many users are selected.
    Ids of other accounts (or deleted users) simply select nothing.
    """
    if selection.all_matching:
        return filtered(actor, selection.filter)
    ids = [i for i in selection.ids if isinstance(i, int)]
    if not ids:
        raise ServiceError("Select at least one user first.")
    return filtered(actor, UserFilter()).where(Membership.id.in_(ids))


def list_users(actor, page: int = 1) -> UserPage:
    """Return one page of the account's live memberships, by name."""
    base = filtered(actor, UserFilter())
    total = db.session.scalar(sa.select(sa.func.count()).select_from(base.subquery()))
    rows = db.session.scalars(
        sa.select(Membership)
        .where(Membership.id.in_(base))
        .join(User, User.id == Membership.user_id)
        .order_by(User.name, User.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    return UserPage(rows=list(rows), total=total, page=page)
