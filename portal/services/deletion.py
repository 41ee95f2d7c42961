"""Deletion (GDPR): soft-delete with its blocked cases, the Deleted users list, restore.

Deleting stamps the membership (``deleted_at``) and keeps everything else: the row, its group
memberships, the audit trail. Within ``RETENTION_DAYS`` an admin can restore it exactly as it
was; after that ``services.purge`` removes it for good.

Everything works set-wise on id chunks, so thousands of users cost a handful of statements.
"""
from collections.abc import Iterator
from collections.abc import Sequence
import enum
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from portal.extensions import db
from portal.models import Account
from portal.models import ActionToken
from portal.models import EndReason
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import Role
from portal.models import Step
from portal.models import Taskstream
from portal.models import TokenPurpose
from portal.models import User
from portal.models import utcnow
from portal.services import audit
from portal.services import auth
from portal.services import paging
from portal.services import people
from portal.services import scope
from portal.services.errors import NotFound
from portal.services.errors import ServiceError
from portal.services.users import PAGE_SIZE
from portal.services.users import Selection
from portal.services.users import selected_ids

# Ids per statement: far below SQLite's 32,766 bound parameters, large enough to stay set-wise.
CHUNK = 5_000
CANCELLED = "Not sent: the user was deleted."


def retention() -> timedelta:
    """Return how long a deleted membership stays restorable."""
    return timedelta(days=retention_days())


def retention_days() -> int:
    """Return how many days a deleted membership stays restorable (the deployment's setting)."""
    return current_app.config["RETENTION_DAYS"]



def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start:start + CHUNK])


def _quoted(name: str) -> str:
    return f"\u201c{name}\u201d"


# ---------------------------------------------------------------------------------------------
# Delete


class BlockKind(enum.StrEnum):
    """Why a deletion leaves someone alone."""

    SELF = "self"
    LAST_ADMIN = "last_admin"
    ONLY_MEMBER = "only_member"


@dataclass(frozen=True)
class Blocked:
    """A selected user the deletion leaves alone: why, and what fixes it."""

    membership_id: int
    name: str
    kind: BlockKind
    reason: str
    group_id: int | None = None
    taskstream_id: int | None = None


@dataclass
class DeletePlan:
    """What deleting a selection does: who goes, who is blocked."""

    selected: int
    deletable: list[int]
    blocked: list[Blocked]
    # A few names, so the confirmation can say whom it is about.
    sample: list[str] = field(default_factory=list)


@dataclass
class DeleteReport:
    deleted: int
    blocked: list[Blocked]


def _admin_blocks(actor, rows, blocked: dict[int, Blocked]) -> None:
    """Block the selected admins when deleting them would leave the account without one."""
    admins = [r for r in rows if r.role == Role.ADMIN and r.id not in blocked]
    if not admins:
        return
    live_admins = db.session.scalar(
        scope.in_account(sa.select(sa.func.count(Membership.id)), Membership, actor).where(
            Membership.deleted_at.is_(None), Membership.role == Role.ADMIN
        )
    )
    if live_admins > len(admins):
        return
    reason = (
        "The last admin of this account; make another user an admin first."
        if len(admins) == 1
        else "Deleting these admins would leave the account without one; "
        "make another user an admin first."
    )
    for row in admins:
        blocked[row.id] = Blocked(row.id, row.name, BlockKind.LAST_ADMIN, reason)


def _group_blocks(actor, selection_ids: sa.Select, names: dict[int, str],
                  blocked: dict[int, Blocked]) -> None:
    """Block the selected members of step-assigned groups the deletion would leave empty."""
    assigned = (
        sa.select(Step.group_id)
        .join(Taskstream, Taskstream.id == Step.taskstream_id)
        .where(Taskstream.account_id == actor.account_id, Step.group_id.is_not(None))
    )
    # Judged once per group, with EXISTS rather than NOT IN (an anti-join on both databases;
    # PostgreSQL cannot turn NOT IN over a subquery into one).
    member = so.aliased(GroupMember)
    person = so.aliased(Membership)
    selected = sa.exists(selection_ids.where(Membership.id == person.id))
    kept_member = (
        sa.select(member.group_id)
        .join(person, person.id == member.membership_id)
        .where(member.group_id == Group.id, person.deleted_at.is_(None), ~selected)
        .exists()
    )
    emptied_groups = sa.select(Group.id).where(
        Group.id.in_(assigned),
        sa.exists().where(GroupMember.group_id == Group.id,
                          GroupMember.membership_id.in_(selection_ids)),
        ~kept_member,
    )
    pairs = db.session.execute(
        sa.select(GroupMember.group_id, GroupMember.membership_id).where(
            GroupMember.group_id.in_(emptied_groups),
            GroupMember.membership_id.in_(selection_ids),
        )
    ).all()
    emptied: dict[int, list[int]] = {}
    for group_id, membership_id in pairs:
        emptied.setdefault(group_id, []).append(membership_id)
    if not emptied:
        return
    steps = {}
    for group_id, group_name, step_name, stream_id, stream_name in db.session.execute(
        sa.select(Group.id, Group.name, Step.name, Taskstream.id, Taskstream.name)
        .join(Step, Step.group_id == Group.id)
        .join(Taskstream, Taskstream.id == Step.taskstream_id)
        .where(Group.id.in_(emptied))
        .order_by(Taskstream.id.desc(), Step.position.desc())
    ):
        steps[group_id] = (group_name, step_name, stream_id, stream_name)  # first step wins
    # Smallest groups first: keeping one of their members may already keep a larger group
    # populated, so fewer people are blocked than if every emptied group were judged alone.
    for group_id, members in sorted(emptied.items(), key=lambda item: (len(item[1]), item[0])):
        if any(m in blocked for m in members):
            continue  # a member stays anyway, so the group is not emptied
        group_name, step_name, stream_id, stream_name = steps[group_id]
        where = (
            f"which is assigned to step {_quoted(step_name)} of taskstream {_quoted(stream_name)}"
        )
        fix = "add someone else to the group or assign the step to another group first."
        reason = (
            f"The only member of group {_quoted(group_name)}, {where}; {fix}"
            if len(members) == 1
            else f"Deleting them all would leave group {_quoted(group_name)} empty, and it is "
            f"assigned to step {_quoted(step_name)} of taskstream {_quoted(stream_name)}; {fix}"
        )
        for membership_id in members:
            blocked[membership_id] = Blocked(
                membership_id, names[membership_id], BlockKind.ONLY_MEMBER, reason,
                group_id=group_id, taskstream_id=stream_id,
            )


def plan_delete(actor, selection: Selection, *, lock: bool = False) -> DeletePlan:
    """Tell which selected users a deletion would delete and which it must leave, and why."""
    return plan_for(actor, selected_ids(actor, selection), lock=lock)


def plan_for(actor, selection_ids: sa.Select, *, lock: bool = False) -> DeletePlan:
    """``plan_delete`` of the live memberships of the actor's account a subquery selects."""
    if lock:
        # Deletions in one account take turns, so the last-admin and only-member rules are
        # judged on committed state: two admins deleting each other cannot both succeed.
        db.session.execute(
            sa.select(Account.id).where(Account.id == actor.account_id).with_for_update()
        )
    rows = db.session.execute(
        sa.select(Membership.id, Membership.role, people.shown_name().label("name"))
        .join(User, User.id == Membership.user_id)
        .where(Membership.id.in_(selection_ids))
        .order_by(sa.literal_column("name"), Membership.id)
    ).all()
    names = {row.id: row.name for row in rows}
    blocked: dict[int, Blocked] = {}
    if actor.id in names:
        blocked[actor.id] = Blocked(
            actor.id, names[actor.id], BlockKind.SELF,
            "You cannot delete yourself; another admin can.",
        )
    _admin_blocks(actor, rows, blocked)
    _group_blocks(actor, selection_ids, names, blocked)
    return DeletePlan(
        selected=len(rows),
        deletable=[row.id for row in rows if row.id not in blocked],
        blocked=sorted(blocked.values(), key=lambda b: (b.name, b.membership_id)),
        sample=[row.name for row in rows[:5]],
    )


def _soft_delete(actor, ids: list[int], now: datetime) -> int:
    """Stamp these memberships deleted and end what they gave access to; no commit."""
    quiet = {"synchronize_session": False}
    deleted = db.session.execute(
        sa.update(Membership)
        .where(Membership.id.in_(ids), Membership.deleted_at.is_(None))
        .values(deleted_at=now, deleted_by_id=actor.user_id),
        execution_options=quiet,
    ).rowcount
    person_ids = sa.select(Membership.user_id).where(Membership.id.in_(ids))
    audit.record_many(actor, "user.deleted", person_ids)
    # Invitation links into this account stop working, and unsent invitations stay unsent.
    db.session.execute(
        sa.update(ActionToken)
        .where(
            ActionToken.used_at.is_(None),
            ActionToken.purpose == TokenPurpose.INVITE,
            ActionToken.account_id == actor.account_id,
            ActionToken.user_id.in_(person_ids),
        )
        .values(used_at=now),
        execution_options=quiet,
    )
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.state == "pending", OutboxMessage.membership_id.in_(ids))
        .values(state="failed", last_error=CANCELLED),
        execution_options=quiet,
    )
    # Someone with no live membership left loses every session and every link (ASVS 7.4.2);
    # a person still in another account keeps both.
    other = so.aliased(Membership)
    gone = sa.select(Membership.user_id).where(
        Membership.id.in_(ids),
        ~sa.exists().where(other.user_id == Membership.user_id, other.deleted_at.is_(None)),
    )
    auth.revoke_all(gone, EndReason.DELETED, by=actor.user)
    db.session.execute(
        sa.update(ActionToken)
        .where(ActionToken.used_at.is_(None), ActionToken.user_id.in_(gone))
        .values(used_at=now),
        execution_options=quiet,
    )
    return deleted


def delete_users(actor, selection: Selection) -> DeleteReport:
    """Soft-delete the selected users; the ones a rule protects are left alone and listed."""
    report = delete_within(actor, selected_ids(actor, selection))
    db.session.commit()
    return report


def delete_within(actor, selection_ids: sa.Select) -> DeleteReport:
    """Soft-delete what ``plan_for`` allows, as one step of a larger use case: no commit.

    Undo import deletes the memberships an import added through here, so its blocked cases
    are those of any delete and the people stay restorable for the retention period.
    """
    plan = plan_for(actor, selection_ids, lock=True)
    now = utcnow()
    deleted = sum(_soft_delete(actor, chunk, now) for chunk in _chunks(plan.deletable))
    return DeleteReport(deleted=deleted, blocked=plan.blocked)


# ---------------------------------------------------------------------------------------------
# Deleted users and restore


@dataclass
class DeletedRow:
    """One line of Deleted users: who, deleted by whom, and when the purge erases them."""

    membership: Membership
    deleted_by: str | None
    purge_at: datetime
    # Past retention already: the next purge erases them (the page says so, not a date).
    purge_due: bool = False


def list_deleted(actor, page: int = 1) -> paging.Page:
    """Return one page of the account's deleted users, most recently deleted first."""
    deleted = scope.in_account(sa.select(Membership.id), Membership, actor).where(
        Membership.deleted_at.is_not(None)
    )
    total = db.session.scalar(sa.select(sa.func.count()).select_from(deleted.subquery()))
    page = paging.clamp(page, total, PAGE_SIZE)
    deleter = so.aliased(User)
    found = db.session.execute(
        sa.select(Membership, deleter.name)
        .outerjoin(deleter, deleter.id == Membership.deleted_by_id)
        .where(Membership.id.in_(deleted))
        .order_by(Membership.deleted_at.desc(), Membership.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    keep, now = retention(), utcnow()
    rows = [DeletedRow(m, by, m.deleted_at + keep, m.deleted_at + keep <= now) for m, by in found]
    return paging.Page(rows=rows, total=total, page=page, size=PAGE_SIZE)


@dataclass(frozen=True)
class Refused:
    """A deleted user a restore leaves deleted, and why."""

    membership_id: int
    name: str
    reason: str


@dataclass
class RestorePlan:
    restorable: list[int]
    refused: list[Refused]
    # Chosen ids that name nothing restorable here: purged, or never in this account.
    unrecoverable: int


@dataclass
class RestoreReport:
    restored: int
    refused: list[Refused]
    unrecoverable: int


def _plan_restore(actor, ids: Sequence[int]) -> RestorePlan:
    """Sort the chosen deleted users into restorable and refused, locking them against the purge."""
    wanted = {i for i in ids if isinstance(i, int)}
    chosen = selected_ids(actor, Selection(ids=sorted(wanted)), deleted=True)
    # Locked: a purge racing this restore either already removed a row (it is missing here)
    # or waits, then finds it live and leaves it (SQLite serialises the two anyway).
    rows = db.session.execute(
        sa.select(Membership.id, Membership.user_id, Membership.deleted_at,
                  people.shown_name().label("name"), User.email)
        .join(User, User.id == Membership.user_id)
        .where(Membership.id.in_(chosen))
        .order_by(Membership.id)
        .with_for_update(of=Membership)
    ).all()
    cutoff = utcnow() - retention()
    # E-mails are stored normalised and unique, so only data written before that rule can
    # clash; compared case-insensitively in one pass over the account's live users.
    emails = sorted({row.email.lower() for row in rows})
    taken: set[str] = set()
    for chunk in _chunks(emails):
        taken.update(db.session.scalars(
            scope.in_account(sa.select(sa.func.lower(User.email)), Membership, actor)
            .select_from(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.deleted_at.is_(None), sa.func.lower(User.email).in_(chunk))
        ))
    restorable, refused = [], []
    for row in rows:
        if row.deleted_at < cutoff:
            days = current_app.config["RETENTION_DAYS"]
            refused.append(Refused(row.id, row.name, f"Deleted more than {days} days ago; "
                                   "no longer recoverable."))
        elif row.email.lower() in taken:
            refused.append(Refused(row.id, row.name, f"Another user of this account now has the "
                                   f"e-mail address {row.email}; change or delete that user first."))
        else:
            restorable.append(row.id)
    return RestorePlan(restorable, refused, len(wanted) - len(rows))


def _apply_restore(actor, plan: RestorePlan, *, commit: bool = True) -> RestoreReport:
    restored = 0
    for chunk in _chunks(plan.restorable):
        # Groups and role were never touched by the deletion: clearing the stamp restores all.
        restored += db.session.execute(
            sa.update(Membership)
            .where(Membership.id.in_(chunk), Membership.deleted_at.is_not(None))
            .values(deleted_at=None, deleted_by_id=None),
            execution_options={"synchronize_session": False},
        ).rowcount
        audit.record_many(
            actor, "user.restored", sa.select(Membership.user_id).where(Membership.id.in_(chunk))
        )
    if commit:
        db.session.commit()
    return RestoreReport(restored, plan.refused, plan.unrecoverable)


def restore_users(actor, ids: Sequence[int], *, commit: bool = True) -> RestoreReport:
    """Restore deleted users of the actor's account: membership, groups and role as they were.
    ``commit=False``: one step of a larger use case, which commits."""
    return _apply_restore(actor, _plan_restore(actor, ids), commit=commit)


def restore_by_email(actor, email: str) -> RestoreReport:
    """Restore the deleted user with this e-mail address in the actor's account."""
    key = people.normalise_email(email)
    found = db.session.execute(
        scope.in_account(sa.select(Membership.id, Membership.deleted_at), Membership, actor)
        .join(User, User.id == Membership.user_id)
        .where(User.email == key)
    ).first()
    if found is None:
        raise NotFound(f"No deleted user {key} in this account; after the purge a deleted user "
                       "is no longer recoverable.")
    if found.deleted_at is None:
        raise ServiceError(f"{key} is not deleted in this account.", "email")
    plan = _plan_restore(actor, [found.id])
    if plan.refused:
        raise ServiceError(plan.refused[0].reason, "email")
    if not plan.restorable:
        raise NotFound(f"{key} is no longer recoverable.")
    return _apply_restore(actor, plan)
