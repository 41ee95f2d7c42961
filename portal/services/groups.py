"""Groups: create, rename and delete them, and add and remove their members (set-wise).

``add_to_groups`` is the one way users get into groups: the Users tab's bulk **Add to Group**,
adding on a group's page, the members chosen for a **New Group** and User Details all call it.
"""
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import Step
from portal.models import Taskstream
from portal.models import User
from portal.services import audit
from portal.services import paging
from portal.services import people
from portal.services import scope
from portal.services import text
from portal.services import users
from portal.services.errors import Conflict
from portal.services.errors import NotFound
from portal.services.errors import ServiceError
from portal.services.users import Selection
from portal.services.users import UserFilter

PAGE_SIZE = 25
MEMBERS_PAGE_SIZE = 50
# The member picker shows this many people at most: it narrows as you type, never lists all.
PICKER_LIMIT = 20
SEARCH_CANDIDATES = 500
# A concurrent admin can make a set-wise write fail on a key; the retry sees their commit.
ATTEMPTS = 2


@dataclass(frozen=True)
class StepRef:
    """A taskstream step that a group is assigned to (what blocks emptying or deleting it)."""

    step_id: int
    step_name: str
    taskstream_id: int
    taskstream_name: str
    group_id: int
    group_name: str


class GroupInUse(Conflict):
    """Refused because a taskstream step would lose its assignees; ``steps`` link to the fix."""

    def __init__(self, message: str, steps: Sequence[StepRef]):
        super().__init__(message)
        self.steps = list(steps)


@dataclass
class GroupRow:
    group: Group
    members: int
    taskstreams: list[Taskstream]


@dataclass
class Added:
    """What ``add_to_groups`` did: the groups, the people selected and the rows inserted."""

    groups: list[Group]
    selected: int
    added: int
    created: Group | None = None

    @property
    def skipped(self) -> int:
        """Return how many (person, group) pairs were already there."""
        return self.selected * len(self.groups) - self.added


@dataclass
class Deleted:
    names: list[str] = field(default_factory=list)
    blocked: list[GroupInUse] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    #: Members of the groups deleted (or, in a plan, to be deleted): they stay users.
    members: int = 0


def clean_group_name(name: str) -> str:
    """Return a trimmed group name or raise ServiceError."""
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError("A group name is required.", "name")
    if len(name) > 120:
        raise ServiceError("The group name is longer than 120 characters.", "name")
    text.refuse_control(name, "The group name cannot contain control characters.", "name")
    return name


def _name_taken(name: str) -> ServiceError:
    return ServiceError(f"A group named “{name}” already exists.", "name")


def _check_name_free(actor, name: str, except_id: int | None = None) -> None:
    stmt = scope.in_account(sa.select(Group.id), Group, actor).where(Group.name_key == name.lower())
    if except_id is not None:
        stmt = stmt.where(Group.id != except_id)
    if db.session.scalar(stmt) is not None:
        raise _name_taken(name)


def _live_members(group_id) -> sa.Select:
    """Return SELECT memberships.id of the group's members who are not deleted."""
    return (
        sa.select(GroupMember.membership_id)
        .join(Membership, Membership.id == GroupMember.membership_id)
        .where(GroupMember.group_id == group_id, Membership.deleted_at.is_(None))
    )


def _locked_groups(actor, group_ids: Sequence[int], *, exclusive: bool) -> list[Group]:
    """Load and lock the actor's groups among ``group_ids`` (PostgreSQL row locks).

    Adding takes a shared key lock, so adds run side by side but wait for a delete (and a delete
    for them); removing and deleting take an exclusive lock, so two admins emptying one group
    cannot both pass the "last member" check. SQLite serialises writers anyway.
    """
    ids = scope.ids_in_account(Group, group_ids, actor)
    if not ids:
        return []
    stmt = sa.select(Group).where(Group.id.in_(ids)).order_by(Group.id)
    stmt = stmt.with_for_update(key_share=True) if not exclusive else stmt.with_for_update()
    return list(db.session.scalars(stmt.execution_options(populate_existing=True)))


def assigned_steps(group_ids: Sequence[int]) -> list[StepRef]:
    """Return the steps these groups are assigned to, by taskstream and position."""
    if not group_ids:
        return []
    rows = db.session.execute(
        sa.select(Step.id, Step.name, Taskstream.id, Taskstream.name, Group.id, Group.name)
        .join(Taskstream, Taskstream.id == Step.taskstream_id)
        .join(Group, Group.id == Step.group_id)
        .where(Step.group_id.in_(group_ids))
        .order_by(Taskstream.name, Taskstream.id, Step.position)
    )
    return [StepRef(*row) for row in rows]


def _describe(steps: Sequence[StepRef]) -> str:
    named = [f"“{s.step_name}” of “{s.taskstream_name}”" for s in steps[:3]]
    more = f" and {len(steps) - 3} more" if len(steps) > 3 else ""
    return ", ".join(named) + more


# --- reading -------------------------------------------------------------------------------


def list_groups(actor, q: str = "", page: int = 1) -> paging.Page:
    """Return one page of GroupRows: groups with live member counts and their taskstreams."""
    q = (q or "").strip()
    base = scope.in_account(sa.select(Group.id), Group, actor)
    if q:
        base = base.where(Group.name_key.contains(q.lower(), autoescape=True))
    rows = sa.select(Group).where(Group.id.in_(base)).order_by(Group.name_key, Group.id)
    result = paging.fetch(base, rows, page, PAGE_SIZE, q)
    groups = result.rows
    ids = [g.id for g in groups]
    counts = member_counts(actor, ids)
    streams: dict[int, dict[int, Taskstream]] = {i: {} for i in ids}
    if ids:
        for group_id, stream in db.session.execute(
            sa.select(Step.group_id, Taskstream)
            .join(Taskstream, Taskstream.id == Step.taskstream_id)
            .where(Step.group_id.in_(ids))
            .order_by(Taskstream.name, Taskstream.id)
        ):
            streams[group_id].setdefault(stream.id, stream)
    result.rows = [GroupRow(g, counts.get(g.id, 0), list(streams[g.id].values())) for g in groups]
    return result


def already_in(actor, selection: users.Selection) -> dict[int, int]:
    """Return {group id: how many of the selected users are in it already} (Add to Group
    marks those groups), in one grouped query however many users are selected."""
    chosen = users.selected_ids(actor, selection).subquery()
    rows = db.session.execute(
        sa.select(GroupMember.group_id, sa.func.count())
        .where(GroupMember.membership_id.in_(sa.select(chosen.c.id)))
        .group_by(GroupMember.group_id)
    )
    return {group_id: count for group_id, count in rows}


def member_counts(actor, group_ids: Sequence[int]) -> dict[int, int]:
    """Return {group id: live members} for these groups (users.group_sizes, one statement)."""
    return users.group_sizes(actor, group_ids)


def get_group(actor, group_id) -> Group:
    """Return the actor's group with this id, or raise NotFound."""
    return scope.get_in_account(Group, group_id, actor)


def list_members(actor, group: Group, q: str = "", page: int = 1) -> paging.Page:
    """Return one page of the group's live members, by name, optionally narrowed by a search."""
    q = (q or "").strip()
    if not q:
        # The list's cheap count (no join per member), then the page along the name index from
        # the nearer end, probing the group's key for each person (users.page_ids): PostgreSQL
        # hash-joined a sequential scan of the account to sort all 4,000 members of a group of
        # 100,000 people for page 1 (EXPLAIN ANALYZE 136 ms under load; this: 9 ms).
        total = member_counts(actor, [group.id]).get(group.id, 0)
        page = paging.clamp(page, total, MEMBERS_PAGE_SIZE)
        ids = users.page_ids(users.filtered(actor, UserFilter(group_id=group.id)), "name", page,
                             total, MEMBERS_PAGE_SIZE)
        found = {m.id: m for m in db.session.scalars(sa.select(Membership).where(
            Membership.id.in_(ids)))} if ids else {}
        return paging.Page(rows=[found[i] for i in ids if i in found], total=total, page=page,
                           size=MEMBERS_PAGE_SIZE, q=q)
    base = _live_members(group.id)
    base = base.where(Membership.id.in_(users.filtered(actor, UserFilter(q=q))))
    rows = (
        sa.select(Membership)
        .where(Membership.id.in_(base))
        .order_by(Membership.sort_name, Membership.id)
    )
    return paging.fetch(base, rows, page, MEMBERS_PAGE_SIZE, q)


def search_members(
    actor, q: str, *, exclude_ids: Sequence[int] = (), exclude_group_id: int | None = None
) -> list[Membership]:
    """Return up to PICKER_LIMIT live users of the account matching ``q``, by name.

    The same search as the Users list (``users.filtered``: its indexes keep it fast at 100,000
    users). People already chosen, or already in ``exclude_group_id``, are left out.
    """
    if not (q or "").strip():
        return []
    # Capped: a short, common search orders a few hundred matches, not thousands; typing
    # more narrows them.
    matches = users.filtered(actor, UserFilter(q=q)).limit(SEARCH_CANDIDATES)
    stmt = (
        sa.select(Membership)
        .where(Membership.id.in_(matches))
        .order_by(Membership.sort_name, Membership.id)
        .limit(PICKER_LIMIT)
    )
    excluded = [i for i in exclude_ids if isinstance(i, int)]
    if excluded:
        stmt = stmt.where(Membership.id.not_in(excluded))
    if exclude_group_id is not None:
        stmt = stmt.where(~Membership.id.in_(_live_members(exclude_group_id)))
    return list(db.session.scalars(stmt))


def chosen_members(actor, membership_ids: Sequence[int]) -> list[Membership]:
    """Return the account's live users among these ids, by name (the picker's chosen list)."""
    ids = scope.ids_in_account(Membership, membership_ids, actor)
    if not ids:
        return []
    return list(
        db.session.scalars(
            sa.select(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.id.in_(ids))
            .order_by(people.shown_name(), User.id)
        )
    )


# --- adding --------------------------------------------------------------------------------


def insert_members(actor, group_ids: Sequence[int], members: sa.Select | Sequence[int], *,
                   include_deleted: bool = False) -> int:
    """Add memberships to groups set-wise, skipping pairs already there; audit each addition.

    ``members`` is a SELECT of membership ids (a Selection) or a list of ids; ids outside the
    actor's account, and deleted users, are ignored. Does not commit: callers own the transaction.
    ``include_deleted`` also adds deleted (restorable) users: an identity provider keeps its
    deactivated users in their groups.
    """
    gids = scope.ids_in_account(Group, group_ids, actor)
    if isinstance(members, sa.Select):
        # Its memberships table is its own, not the one of the query it is nested in.
        members = members.correlate(None)
    else:
        members = scope.ids_in_account(Membership, members, actor,
                                       include_deleted=include_deleted)
        if not members:
            return 0
    added = 0
    for group in db.session.scalars(sa.select(Group).where(Group.id.in_(gids))):
        new = (
            sa.select(Membership.id, Membership.user_id)
            .where(
                Membership.id.in_(members),
                Membership.account_id == actor.account_id,
                sa.true() if include_deleted else Membership.deleted_at.is_(None),
            )
            .where(
                ~sa.exists().where(
                    GroupMember.group_id == group.id, GroupMember.membership_id == Membership.id
                )
            )
            .subquery()
        )
        # The events first: the same SELECT still sees exactly the pairs about to be added.
        audit.record_many(
            actor, "group.member_added", sa.select(new.c.user_id), group_id=group.id,
            group=group.name,
        )
        rows = sa.select(sa.literal(group.id, sa.Integer), new.c.id)
        insert = sa.insert(GroupMember).from_select(["group_id", "membership_id"], rows)
        # SQLAlchemy reports an INSERT's row count only when asked to keep it.
        result = db.session.execute(insert.execution_options(preserve_rowcount=True))
        added += result.rowcount
    return added


def add_to_groups(
    actor,
    group_ids: Sequence[int],
    selection: Selection,
    *,
    new_group_name: str | None = None,
) -> Added:
    """Add the selected users to the chosen groups, and to a new group when one is named.

    The one function behind every way of adding users to groups. A new group may start empty;
    otherwise at least one user must be selected. Pairs already there are skipped; users of other
    accounts are ignored; a group deleted meanwhile is reported on the ``group_ids`` field.
    """
    new_group_name = clean_group_name(new_group_name) if new_group_name is not None else None
    wanted = {i for i in group_ids if isinstance(i, int)}
    anyone = selection.all_matching or bool(selection.ids)
    if not wanted and not new_group_name:
        raise ServiceError("Choose at least one group, or name a new one.", "group_ids")
    if not anyone and not new_group_name:
        raise ServiceError("Choose at least one user to add.", "member_ids")
    for attempt in range(ATTEMPTS):
        try:
            result = _add(actor, wanted, selection if anyone else None, new_group_name)
            db.session.commit()
            return result
        except IntegrityError:
            # Another admin added the same person (or created the same name) in the meantime.
            db.session.rollback()
    raise Conflict("Another admin changed these groups at the same moment; please try again.")


def _add(actor, wanted: set[int], selection: Selection | None, new_name: str | None) -> Added:
    groups = _locked_groups(actor, wanted, exclusive=False)
    if len(groups) < len(wanted):
        raise ServiceError(
            "A chosen group no longer exists (it may just have been deleted); choose again.",
            "group_ids",
        )
    created = None
    if new_name:
        _check_name_free(actor, new_name)
        created = Group(account_id=actor.account_id, name=new_name, name_key=new_name.lower())
        db.session.add(created)
        db.session.flush()
        audit.record(actor, "group.created", group_id=created.id, name=new_name)
        groups.append(created)
    selected = added = 0
    if selection is not None:
        selected = users.count_selected(actor, selection)
        added = insert_members(actor, [g.id for g in groups], users.selected_ids(actor, selection))
    return Added(groups=groups, selected=selected, added=added, created=created)


def create_group(actor, name: str, member_ids: Sequence[int] = ()) -> Group:
    """Create a group in the actor's account, optionally with members (through add_to_groups)."""
    return add_to_groups(actor, [], Selection(ids=tuple(member_ids)), new_group_name=name).created


# --- changing and removing -----------------------------------------------------------------


def rename_group(actor, group_id, name: str, *, commit: bool = True) -> Group:
    """Rename a group (names stay unique per account, whatever their case). ``commit=False``:
    one step of a larger use case, which commits (the name's key is checked by a flush)."""
    group = scope.get_in_account(Group, group_id, actor)
    name = clean_group_name(name)
    if name == group.name:
        return group
    _check_name_free(actor, name, except_id=group.id)
    old = group.name
    group.name, group.name_key = name, name.lower()
    audit.record(actor, "group.renamed", group_id=group.id, old=old, new=name)
    try:
        if commit:
            db.session.commit()
        else:
            db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise _name_taken(name) from None
    return group


def remove_from_group(actor, group_id, membership_ids: Sequence[int], *,
                      include_deleted: bool = False, commit: bool = True) -> int:
    """Take users out of a group; refused when a step assigned to it would have no one left.

    ``include_deleted`` also takes deleted (restorable) users out (an identity provider's
    deactivated users). ``commit=False``: one step of a larger use case, which commits."""
    groups = _locked_groups(actor, [group_id], exclusive=True)
    if not groups:
        raise NotFound()
    group = groups[0]
    mids = scope.ids_in_account(Membership, membership_ids, actor, include_deleted=include_deleted)
    leaving = (
        sa.select(GroupMember.membership_id).where(GroupMember.group_id == group.id)
        if include_deleted else _live_members(group.id)
    ).where(GroupMember.membership_id.in_(mids))
    leaving_ids = list(db.session.scalars(leaving))
    if not leaving_ids:
        raise ServiceError("Those users are not in this group any more.")
    remaining = db.session.scalar(
        sa.select(sa.func.count()).select_from(
            _live_members(group.id).where(GroupMember.membership_id.not_in(leaving_ids)).subquery()
        )
    )
    steps = assigned_steps([group.id]) if remaining == 0 else []
    if steps:
        raise GroupInUse(
            f"“{group.name}” is assigned to the step {_describe(steps)}; removing its "
            f"{'only member' if len(leaving_ids) == 1 else 'last members'} would leave that "
            "step with no one. Add someone else to the group or assign the step to another "
            "group first.",
            steps,
        )
    audit.record_many(
        actor, "group.member_removed",
        sa.select(Membership.user_id).where(Membership.id.in_(leaving_ids)),
        group_id=group.id, group=group.name,
    )
    db.session.execute(
        sa.delete(GroupMember).where(
            GroupMember.group_id == group.id, GroupMember.membership_id.in_(leaving_ids)
        )
    )
    if commit:
        db.session.commit()
    return len(leaving_ids)


def delete_groups(actor, group_ids: Sequence[int]) -> Deleted:
    """Delete groups with their memberships; groups assigned to a step are kept and explained."""
    if not group_ids:
        raise ServiceError("Select at least one group first.")
    for attempt in range(ATTEMPTS):
        try:
            result = _delete(actor, group_ids)
            db.session.commit()
            return result
        except IntegrityError:
            # A step was assigned to one of the groups meanwhile (the key is RESTRICT): re-check.
            db.session.rollback()
    raise Conflict("Another admin changed these groups at the same moment; please try again.")


def plan_group_deletion(actor, group_ids: Sequence[int]) -> Deleted:
    """Say what Delete would do to these groups, changing nothing (the question asked first)."""
    if not group_ids:
        raise ServiceError("Select at least one group first.")
    ids = scope.ids_in_account(Group, group_ids, actor)
    groups = list(db.session.scalars(sa.select(Group).where(Group.id.in_(ids)))) if ids else []
    result = _sort_out(groups)
    result.members = sum(member_counts(actor, result.ids).values())
    return result


def _sort_out(groups: Sequence[Group]) -> Deleted:
    """Split groups into those that may go (names) and those a step still needs (blocked)."""
    steps_of: dict[int, list[StepRef]] = {}
    for ref in assigned_steps([g.id for g in groups]):
        steps_of.setdefault(ref.group_id, []).append(ref)
    result = Deleted()
    for group in sorted(groups, key=lambda g: g.name_key):
        steps = steps_of.get(group.id)
        if steps:
            result.blocked.append(GroupInUse(
                f"“{group.name}” is assigned to the step {_describe(steps)}; assign "
                f"{'that step' if len(steps) == 1 else 'those steps'} to another group first.",
                steps,
            ))
            continue
        result.names.append(group.name)
        result.ids.append(group.id)
    return result


def _delete(actor, group_ids: Sequence[int]) -> Deleted:
    groups = _locked_groups(actor, group_ids, exclusive=True)
    result = _sort_out(groups)
    doomed = result.ids
    counts = member_counts(actor, doomed)
    result.members = sum(counts.values())
    for group in groups:
        if group.id in doomed:
            audit.record(actor, "group.deleted", group_id=group.id, name=group.name,
                         members=counts.get(group.id, 0))
    if doomed:
        # The database removes the group's memberships (ON DELETE CASCADE), set-wise.
        db.session.execute(
            sa.delete(Group).where(Group.id.in_(doomed)).execution_options(
                synchronize_session=False
            )
        )
    return result
