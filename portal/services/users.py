"""Users of an account: the list query and the selection that every bulk action acts on."""
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import User
from portal.models.membership import INVITE_STATES
from portal.services import scope
from portal.services import taskstreams
from portal.services.errors import ServiceError

PAGE_SIZE = 50
STATES = INVITE_STATES
# Sort keys the list accepts; a leading "-" means descending.
SORTS = ("name", "-name", "email", "-email", "last_seen", "-last_seen")


@dataclass(frozen=True)
class UserFilter:
    """What the Users list is narrowed to (search text, group id, state)."""

    q: str = ""
    group_id: int | None = None
    state: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.q.strip() or self.group_id or self.state)


@dataclass(frozen=True)
class Selection:
    """The users a bulk action acts on: chosen ids, or everything matching a filter."""

    ids: Sequence[int] = field(default_factory=tuple)
    all_matching: bool = False
    filter: UserFilter = field(default_factory=UserFilter)


@dataclass
class UserPage:
    """One page of the list, with what the template needs around it."""

    rows: list[Membership]
    total: int
    page: int
    sort: str
    filter: UserFilter
    # membership id -> names of its groups (one query for the whole page)
    groups: dict[int, list[str]] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / PAGE_SIZE))

    @property
    def first_index(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1 if self.total else 0

    @property
    def last_index(self) -> int:
        return min(self.total, self.page * PAGE_SIZE)


def filtered(actor, user_filter: UserFilter, *, deleted: bool = False) -> sa.Select:
    """Return SELECT memberships.id of the account's live (or deleted) users matching the filter."""
    stmt = scope.in_account(sa.select(Membership.id), Membership, actor).where(
        Membership.deleted_at.is_not(None) if deleted else Membership.deleted_at.is_(None)
    )
    q = user_filter.q.strip().lower()
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.join(User, User.id == Membership.user_id).where(
            sa.or_(
                sa.func.lower(User.name).like(pattern, escape="\\"),
                User.email.like(pattern, escape="\\"),
            )
        )
    if user_filter.state:
        stmt = stmt.where(Membership.invite_state == user_filter.state)
    if user_filter.group_id:
        stmt = stmt.where(
            Membership.id.in_(
                sa.select(GroupMember.membership_id).where(
                    GroupMember.group_id == user_filter.group_id
                )
            )
        )
    return stmt


def selected_ids(actor, selection: Selection, *, deleted: bool = False) -> sa.Select:
    """Return SELECT memberships.id of the selection, scoped to the actor's account.

    Usable as a subquery, so bulk actions work set-wise however many users are selected.
    Ids of other accounts (or deleted users) simply select nothing; with ``deleted=True`` it
    selects among the deleted users instead (restore), and live ones select nothing.
    """
    if selection.all_matching:
        return filtered(actor, selection.filter, deleted=deleted)
    ids = [i for i in selection.ids if isinstance(i, int)]
    if not ids:
        raise ServiceError("Select at least one user first.")
    return filtered(actor, UserFilter(), deleted=deleted).where(Membership.id.in_(ids))


def count_selected(actor, selection: Selection) -> int:
    """Return how many users a selection names (after scoping)."""
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(selected_ids(actor, selection).subquery())
    )


def _order(sort: str) -> list:
    key = sort.lstrip("-")
    column = {
        "name": sa.func.lower(User.name),
        "email": User.email,
        "last_seen": User.last_seen_at,
    }[key]
    if sort.startswith("-"):
        return [column.desc(), Membership.id.desc()]
    return [column.asc(), Membership.id.asc()]


def list_users(
    actor, user_filter: UserFilter = UserFilter(), sort: str = "name", page: int = 1
) -> UserPage:
    """Return one page of the account's live users matching the filter, sorted."""
    sort = sort if sort in SORTS else "name"
    base = filtered(actor, user_filter)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(base.subquery()))
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = list(
        db.session.scalars(
            sa.select(Membership)
            .where(Membership.id.in_(base))
            .join(User, User.id == Membership.user_id)
            .order_by(*_order(sort))
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
    )
    return UserPage(
        rows=rows,
        total=total,
        page=page,
        sort=sort,
        filter=user_filter,
        groups=group_names([m.id for m in rows]),
    )


def group_names(membership_ids: Sequence[int]) -> dict[int, list[str]]:
    """Return membership id -> its group names, in one query."""
    names: dict[int, list[str]] = defaultdict(list)
    if membership_ids:
        for membership_id, name in db.session.execute(
            sa.select(GroupMember.membership_id, Group.name)
            .join(Group, Group.id == GroupMember.group_id)
            .where(GroupMember.membership_id.in_(membership_ids))
            .order_by(Group.name_key)
        ):
            names[membership_id].append(name)
    return dict(names)


def group_choices(actor) -> list[tuple[int, str]]:
    """Return (id, name) of the account's groups, by name, for filters and forms."""
    return list(
        db.session.execute(
            scope.in_account(sa.select(Group.id, Group.name), Group, actor).order_by(Group.name_key)
        )
    )


@dataclass
class UserDetails:
    """What the user details page shows about one membership."""

    membership: Membership
    groups: list[Group]
    activity: list[AuditEvent]
    # The groups and the taskstreams reached through them (services.taskstreams.participates_in).
    participation: taskstreams.Participation


def get_user(actor, membership_id) -> Membership:
    """Return a live membership of the actor's account, or raise NotFound."""
    return scope.get_in_account(Membership, membership_id, actor)


def user_details(actor, membership_id, activity_limit: int = 20) -> UserDetails:
    """Return one user of the account with their groups, taskstreams and recent activity."""
    membership = get_user(actor, membership_id)
    participation = taskstreams.participates_in(actor, membership.id)
    return UserDetails(
        membership=membership,
        groups=participation.groups,
        activity=recent_activity(actor, membership, activity_limit),
        participation=participation,
    )


def recent_activity(actor, membership: Membership, limit: int = 20) -> list[AuditEvent]:
    """Return the newest audit events by or about this person in the actor's account."""
    user_id = membership.user_id
    return list(
        db.session.scalars(
            sa.select(AuditEvent)
            .where(
                AuditEvent.account_id == actor.account_id,
                sa.or_(AuditEvent.subject_user_id == user_id, AuditEvent.actor_user_id == user_id),
            )
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )
