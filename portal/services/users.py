"""Users of an account: the list query and the selection that every bulk action acts on."""
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Group
from portal.models import GroupMember
from portal.models import Invitation
from portal.models import InviteState
from portal.models import Membership
from portal.models import Role
from portal.models import User
from portal.models import utcnow
from portal.models.membership import invitation_of
from portal.services import invitation_states
from portal.services import paging
from portal.services import people
from portal.services import scope
from portal.services.errors import ServiceError

PAGE_SIZE = 50
STATES = tuple(InviteState)
# Sort keys the list accepts; a leading "-" means descending.
SORTS = ("name", "-name", "email", "-email", "last_seen", "-last_seen")


@dataclass(frozen=True)
class UserFilter:
    """What the Users list is narrowed to (search text, group id, state)."""

    q: str = ""
    group_id: int | None = None
    state: str | None = None
    # Where the invitation stands (services/invitation_states.py: CHOICES).
    invitation: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.q.strip() or self.group_id or self.state or self.invitation)


@dataclass(frozen=True)
class Selection:
    """The users a bulk action acts on: chosen ids, or everything matching a filter."""

    ids: Sequence[int] = field(default_factory=tuple)
    all_matching: bool = False
    filter: UserFilter = field(default_factory=UserFilter)


@dataclass(frozen=True)
class UserRow:
    """One line of the Users list (plain values: a page is read in two small queries)."""

    id: int
    name: str
    email: str
    role: str
    invite_state: str
    invite_error: str | None
    last_seen_at: datetime | None
    # Where the invitation stands (None: never invited).
    invitation: Invitation | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


@dataclass(kw_only=True)
class UserPage(paging.Page):
    """One page of the list (the one page type), with the query it shows."""

    sort: str
    filter: UserFilter
    # membership id -> names of its groups (one query for the whole page)
    groups: dict[int, list[str]] = field(default_factory=dict)


def matching_user_ids(text: str) -> sa.Select:
    """Return SELECT of the ids of people whose name or e-mail contains ``text`` (3+ chars).

    Served by the trigram index (portal/models/search.py): FTS5 on SQLite, pg_trgm on
    PostgreSQL, so a search stays fast however many people there are.
    """
    table = sa.table("user_search", sa.column("rowid"), sa.column("user_id"), sa.column("body"))
    if db.session.get_bind().dialect.name == "sqlite":
        # A quoted FTS5 string is a phrase; with trigram tokens that is exactly "contains".
        phrase = '"' + text.replace('"', '""') + '"'
        return sa.select(table.c.rowid.label("user_id")).where(
            sa.text("user_search MATCH :phrase").bindparams(phrase=phrase)
        )
    return sa.select(table.c.user_id).where(table.c.body.contains(text, autoescape=True))


def _search_hits(actor, q: str) -> sa.Subquery:
    """Return (user_id, known) of the people whose name or e-mail contains ``q``, to join.

    Someone known elsewhere who has not accepted yet is found by the name typed here, never by
    their own (DESIGN §1): ``known`` rows (the trigram matches) stand for memberships without
    a name of their own, the others for the account's memberships with one. A join, not an OR
    around the trigram subquery: the OR made PostgreSQL test every membership of the account
    against the hashed matches (a sequential scan of 100,000 rows, 40-55 ms whatever the
    search); joined, it starts from the matches (the trigram index, then the memberships
    index on user_id) and knows how many there are, so a search matching everyone still
    scans. Each person appears once per branch (user_search's key; one membership per person
    and account), so the join repeats no membership.
    """
    other = so.aliased(Membership)
    known = matching_user_ids(q).add_columns(sa.true().label("known"))
    named = sa.select(other.user_id, sa.false().label("known")).where(
        other.account_id == actor.account_id,
        other.invited_name.is_not(None),
        sa.or_(other.sort_name.contains(q, autoescape=True),
               other.sort_email.contains(q, autoescape=True)),
    )
    return sa.union_all(known, named).subquery("hits")


def filtered(actor, user_filter: UserFilter, *, deleted: bool = False) -> sa.Select:
    """Return SELECT memberships.id of the account's live (or deleted) users matching the filter.

    Searches of three or more characters match anywhere in the name or e-mail (trigram
    index); one or two characters match the start of the name or e-mail (sort-key index).
    """
    kept = Membership.deleted_at.is_not(None) if deleted else Membership.deleted_at.is_(None)
    stmt = scope.in_account(sa.select(Membership.id), Membership, actor).where(kept)
    q = " ".join(user_filter.q.split()).lower()
    if len(q) >= 3:
        hits = _search_hits(actor, q)
        stmt = stmt.join(hits, sa.and_(hits.c.user_id == Membership.user_id,
                                       hits.c.known == Membership.invited_name.is_(None)))
    elif q:
        # Ranges, not LIKE 'q%', so both databases use the index whatever the collation; each
        # branch repeats what the (partial) sort indexes need, so SQLite serves the OR from two.
        end = q + "\uffff"
        same = sa.and_(Membership.account_id == actor.account_id, kept)
        stmt = stmt.where(
            sa.or_(
                sa.and_(same, Membership.sort_name >= q, Membership.sort_name < end),
                sa.and_(same, Membership.sort_email >= q, Membership.sort_email < end),
            )
        )
    if user_filter.state:
        stmt = stmt.where(Membership.invite_state == user_filter.state)
    if user_filter.invitation:
        stmt = stmt.where(invitation_states.condition(user_filter.invitation))
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
    ids = scope.parse_ids(selection.ids)
    if not ids:
        raise ServiceError("Select at least one user first.")
    return filtered(actor, UserFilter(), deleted=deleted).where(Membership.id.in_(ids))


def count_selected(actor, selection: Selection) -> int:
    """Return how many users a selection names (after scoping)."""
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(selected_ids(actor, selection).subquery())
    )


SORT_COLUMNS = {
    "name": Membership.sort_name,
    "email": Membership.sort_email,
    "last_seen": Membership.sort_last_seen,
}


def _order(sort: str, reverse: bool = False, key=None, ident=None) -> list:
    """Return ORDER BY terms for a sort; ``reverse`` flips it (for pages past the middle).

    ``key`` and ``ident`` stand in for the sort column and the id (columns of a subquery).
    """
    name = sort.lstrip("-")
    key = SORT_COLUMNS[name] if key is None else key
    ident = Membership.id if ident is None else ident
    descending = sort.startswith("-") != reverse
    term = key.desc() if descending else key.asc()
    if name == "last_seen":
        # Never seen (NULL) counts as oldest on both databases (SQLite's own order; PostgreSQL
        # has an index in that order, portal/models/search.py). Names and e-mails are never
        # NULL, so they keep each database's default and its plain index.
        term = term.nulls_last() if descending else term.nulls_first()
    return [term, ident.desc() if descending else ident.asc()]


def page_ids(base: sa.Select, sort: str, page: int, total: int,
             size: int | None = None) -> list[int]:
    """Read one page of ids of ``base`` (a ``filtered`` SELECT of ``total`` ids) along the sort
    index, from whichever end is nearer (``size``: PAGE_SIZE)."""
    size = size or PAGE_SIZE
    offset = (page - 1) * size
    limit = max(0, min(size, total - offset))
    if not limit:
        return []
    reverse = offset > total // 2
    stmt = base.order_by(*_order(sort, reverse)).limit(limit)
    ids = list(db.session.scalars(stmt.offset(total - offset - limit if reverse else offset)))
    return ids[::-1] if reverse else ids


def _narrow_page(base: sa.Select, sort: str, page: int) -> tuple[list[int], int | None]:
    """Read one page of a narrow result and its size in one statement (None: past the end).

    The count runs in a subquery of its own, so the database finds the (few) matches the
    cheapest way and sorts only them, rather than walking the whole account in sort order.
    """
    matches = base.add_columns(
        SORT_COLUMNS[sort.lstrip("-")].label("key"), sa.func.count().over().label("total")
    ).subquery()
    rows = db.session.execute(
        sa.select(matches.c.id, matches.c.total)
        .order_by(*_order(sort, key=matches.c.key, ident=matches.c.id))
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    if not rows:
        # Nothing on page 1: nothing at all (no second statement to count the empty result).
        return [], 0 if page == 1 else None
    return [row[0] for row in rows], rows[0][1]


def group_sizes(actor, group_ids: Sequence[int], *, scoped: bool = True) -> dict[int, int]:
    """Return {group id: live members} for these groups of the actor's account, in one
    statement. ``scoped=False``: the ids are not known to be the actor's (an address), the
    statement checks each (a group of another account is left out).

    One index-only walk of the groups' keys counts all members and, among them, the deleted
    ones (few: looked up in a hashed list of the account's deleted memberships), so 100,000
    members cost no join per row. Counting the deleted ones apart (starting from them) let
    PostgreSQL scan all of group_members for it: 60-100 ms under load for one group of 4,000.
    """
    if not group_ids:
        return {}
    deleted_ids = sa.select(Membership.id).where(
        Membership.account_id == actor.account_id, Membership.deleted_at.is_not(None)
    )
    live = sa.func.count() - sa.func.count().filter(GroupMember.membership_id.in_(deleted_ids))
    stmt = sa.select(GroupMember.group_id, live).where(GroupMember.group_id.in_(group_ids))
    if not scoped:
        stmt = stmt.where(sa.exists(scope.in_account(sa.select(Group.id), Group, actor).where(
            Group.id == GroupMember.group_id)))
    return dict(db.session.execute(stmt.group_by(GroupMember.group_id)).all())


def list_users(
    actor, user_filter: UserFilter = UserFilter(), sort: str = "name", page: int = 1
) -> UserPage:
    """Return one page of the account's live users matching the filter, sorted.

    Broad views (everyone, a state) count along the account's index and read the page's ids
    from the nearer end of the sort index, so the last page costs what the first does. A
    group alone is counted from its own key (group_sizes) and paged the same way: PostgreSQL
    then walks the sort index and probes the group's key for each person until the page is
    full (2 ms for page 1 of a group of 2,600 in 100,000), where reading all its members with
    their size (a hash join over a sequential scan of the account) took 30-60 ms. Other
    narrow views (a search, a group with more) are read with their size in one statement.
    Only the page's rows are then loaded.
    """
    sort = sort if sort in SORTS else "name"
    page = max(1, page)
    base = filtered(actor, user_filter)
    group_alone = bool(user_filter.group_id) and UserFilter(
        group_id=user_filter.group_id) == user_filter
    ids, total = [], None
    if not group_alone and (user_filter.q.strip() or user_filter.group_id):
        ids, total = _narrow_page(base, sort, page)  # total None: past the end
    if total is None:
        if group_alone:
            # An id typed into the address may be another account's group: it counts nobody.
            total = group_sizes(actor, [user_filter.group_id], scoped=False).get(
                user_filter.group_id, 0)
        else:
            total = db.session.scalar(sa.select(sa.func.count()).select_from(base.subquery()))
        page = min(page, max(1, math.ceil(total / PAGE_SIZE)))
        ids = page_ids(base, sort, page, total)
    now = utcnow()
    loaded = {} if not ids else {
        row.id: UserRow(*row[:7], invitation=invitation_of(row[4], row[7], row[8], now))
        for row in db.session.execute(
            sa.select(
                Membership.id, people.shown_name(), User.email,
                Membership.role, Membership.invite_state,
                Membership.invite_error, Membership.sort_last_seen,
                Membership.invite_expires_at, Membership.invite_sent_at,
            )
            .join(User, User.id == Membership.user_id)
            .where(Membership.id.in_(ids))
        )
    }
    return UserPage(
        rows=[loaded[i] for i in ids if i in loaded],
        total=total,
        page=page,
        size=PAGE_SIZE,
        sort=sort,
        filter=user_filter,
        groups=group_names(ids),
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


def get_user(actor, membership_id) -> Membership:
    """Return a live membership of the actor's account, or raise NotFound."""
    return scope.get_in_account(Membership, membership_id, actor)


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
