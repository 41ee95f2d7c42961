"""Deletion (GDPR): soft-delete with its blocked cases, restore within retention, the purge.

Deleting stamps the membership (``deleted_at``) and keeps everything else: the row, its group
memberships, the audit trail. Within ``RETENTION_DAYS`` an admin can restore it exactly as it
was. ``purge_expired`` then removes what is past retention and erases the people left with no
membership at all, anonymising the audit events that name them.

Everything works set-wise on id chunks, so thousands of users cost a handful of statements.
"""
import json
import re
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from portal.extensions import db
from portal.models import Account
from portal.models import ActionToken
from portal.models import AuditEvent
from portal.models import Device
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import Step
from portal.models import Taskstream
from portal.models import User
from portal.models import utcnow
from portal.services import audit
from portal.services import auth
from portal.services import people
from portal.services import scope
from portal.services.errors import NotFound
from portal.services.errors import ServiceError
from portal.services.users import PAGE_SIZE
from portal.services.users import Selection
from portal.services.users import selected_ids

# The people one purge batch erases, for the length of its transaction (see _erase_people).
ERASED = sa.Table(
    "purge_erased_people", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
    prefixes=["TEMPORARY"],
)
# Ids per statement: far below SQLite's 32,766 bound parameters, large enough to stay set-wise.
CHUNK = 5_000
# Memberships per purge transaction: each commits in tens of milliseconds (short locks).
PURGE_BATCH = 5_000
CANCELLED = "Not sent: the user was deleted."
TOMBSTONE = "deleted user #"
# Free-text details that describe the person's own things (an app may name a device
# "Alice's iPhone"); in an erased person's events they are replaced, not searched.
PERSONAL_DETAILS = ("device",)


def retention() -> timedelta:
    """Return how long a deleted membership stays restorable."""
    return timedelta(days=current_app.config["RETENTION_DAYS"])


def tombstone(user_id: int) -> str:
    """Return the pseudonym an erased person keeps in the audit trail."""
    return f"{TOMBSTONE}{user_id}"


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start:start + CHUNK])


def _quoted(name: str) -> str:
    return f"\u201c{name}\u201d"


# ---------------------------------------------------------------------------------------------
# Delete


@dataclass(frozen=True)
class Blocked:
    """A selected user the deletion leaves alone: why, and what fixes it."""

    membership_id: int
    name: str
    kind: str  # "self", "last_admin" or "only_member"
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
    admins = [r for r in rows if r.role == "admin" and r.id not in blocked]
    if not admins:
        return
    live_admins = db.session.scalar(
        scope.in_account(sa.select(sa.func.count(Membership.id)), Membership, actor).where(
            Membership.deleted_at.is_(None), Membership.role == "admin"
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
        blocked[row.id] = Blocked(row.id, row.name, "last_admin", reason)


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
                membership_id, names[membership_id], "only_member", reason,
                group_id=group_id, taskstream_id=stream_id,
            )


def plan_delete(actor, selection: Selection, *, lock: bool = False) -> DeletePlan:
    """Tell which selected users a deletion would delete and which it must leave, and why."""
    if lock:
        # Deletions in one account take turns, so the last-admin and only-member rules are
        # judged on committed state: two admins deleting each other cannot both succeed.
        db.session.execute(
            sa.select(Account.id).where(Account.id == actor.account_id).with_for_update()
        )
    selection_ids = selected_ids(actor, selection)
    rows = db.session.execute(
        sa.select(Membership.id, Membership.role, User.name)
        .join(User, User.id == Membership.user_id)
        .where(Membership.id.in_(selection_ids))
        .order_by(User.name, Membership.id)
    ).all()
    names = {row.id: row.name for row in rows}
    blocked: dict[int, Blocked] = {}
    if actor.id in names:
        blocked[actor.id] = Blocked(
            actor.id, names[actor.id], "self", "You cannot delete yourself; another admin can."
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
            ActionToken.purpose == "invite",
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
    auth.revoke_all(gone, "deleted", by=actor.user)
    db.session.execute(
        sa.update(ActionToken)
        .where(ActionToken.used_at.is_(None), ActionToken.user_id.in_(gone))
        .values(used_at=now),
        execution_options=quiet,
    )
    return deleted


def delete_users(actor, selection: Selection) -> DeleteReport:
    """Soft-delete the selected users; the ones a rule protects are left alone and listed."""
    plan = plan_delete(actor, selection, lock=True)
    now = utcnow()
    deleted = sum(_soft_delete(actor, chunk, now) for chunk in _chunks(plan.deletable))
    db.session.commit()
    return DeleteReport(deleted=deleted, blocked=plan.blocked)


# ---------------------------------------------------------------------------------------------
# Deleted users and restore


@dataclass
class DeletedRow:
    membership: Membership
    deleted_by: str | None
    purge_at: datetime


@dataclass
class DeletedPage:
    rows: list[DeletedRow]
    total: int
    page: int
    pages: int


def list_deleted(actor, page: int = 1) -> DeletedPage:
    """Return one page of the account's deleted users, most recently deleted first."""
    deleted = scope.in_account(sa.select(Membership.id), Membership, actor).where(
        Membership.deleted_at.is_not(None)
    )
    total = db.session.scalar(sa.select(sa.func.count()).select_from(deleted.subquery()))
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    deleter = so.aliased(User)
    found = db.session.execute(
        sa.select(Membership, deleter.name)
        .outerjoin(deleter, deleter.id == Membership.deleted_by_id)
        .where(Membership.id.in_(deleted))
        .order_by(Membership.deleted_at.desc(), Membership.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    keep = retention()
    rows = [DeletedRow(m, by, m.deleted_at + keep) for m, by in found]
    return DeletedPage(rows=rows, total=total, page=page, pages=pages)


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
        sa.select(Membership.id, Membership.user_id, Membership.deleted_at, User.name, User.email)
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


def _apply_restore(actor, plan: RestorePlan) -> RestoreReport:
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
    db.session.commit()
    return RestoreReport(restored, plan.refused, plan.unrecoverable)


def restore_users(actor, ids: Sequence[int]) -> RestoreReport:
    """Restore deleted users of the actor's account: membership, groups and role as they were."""
    return _apply_restore(actor, _plan_restore(actor, ids))


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


# ---------------------------------------------------------------------------------------------
# Purge


@dataclass
class PurgeReport:
    cutoff: datetime
    dry_run: bool = False
    memberships: int = 0
    group_memberships: int = 0
    people: int = 0
    audit_events: int = 0
    devices: int = 0
    tokens: int = 0
    mails: int = 0

    def __str__(self) -> str:
        verb = "Would purge" if self.dry_run else "Purged"
        return (
            f"{verb} {self.memberships} memberships deleted before {self.cutoff:%Y-%m-%d %H:%M:%S} "
            f"UTC ({self.group_memberships} group memberships) and erased {self.people} people "
            f"({self.devices} devices, {self.tokens} links, {self.mails} e-mails); "
            f"{self.audit_events} audit events anonymised."
        )


def _expired(cutoff: datetime) -> sa.Select:
    return sa.select(Membership.id).where(Membership.deleted_at < cutoff)


def _count(stmt: sa.Select) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))


def _dry_run(report: PurgeReport) -> PurgeReport:
    """Count what a purge at ``report.cutoff`` would remove, touching nothing."""
    expired = _expired(report.cutoff)
    surviving = sa.exists().where(
        Membership.user_id == User.id,
        sa.or_(Membership.deleted_at.is_(None), Membership.deleted_at >= report.cutoff),
    )
    erased = sa.select(User.id).where(~surviving)
    report.memberships = _count(expired)
    report.group_memberships = _count(
        sa.select(GroupMember.group_id).where(GroupMember.membership_id.in_(expired))
    )
    report.people = _count(erased)
    report.audit_events = _count(
        sa.select(AuditEvent.id).where(
            sa.or_(AuditEvent.actor_user_id.in_(erased), AuditEvent.subject_user_id.in_(erased))
        )
    )
    report.devices = _count(sa.select(Device.id).where(Device.user_id.in_(erased)))
    report.tokens = _count(sa.select(ActionToken.id).where(ActionToken.user_id.in_(erased)))
    report.mails = _count(
        sa.select(OutboxMessage.id).where(
            sa.or_(OutboxMessage.user_id.in_(erased), OutboxMessage.membership_id.in_(expired))
        )
    )
    return report


def _scrub(value: Any, pattern: re.Pattern, replacement: str, owner: bool) -> Any:
    """Return ``value`` (JSON) with ``pattern`` replaced in its strings.

    When the person owns the event's things (``owner``), their personal details go entirely.
    """
    if isinstance(value, str):
        return pattern.sub(replacement, value)
    if isinstance(value, list):
        return [_scrub(v, pattern, replacement, owner) for v in value]
    if isinstance(value, dict):
        return {
            k: f"{k} of {replacement}" if owner and k in PERSONAL_DETAILS
            else _scrub(v, pattern, replacement, owner)
            for k, v in value.items()
        }
    return value


def _identifiers(email: str, name: str) -> list[str]:
    """Return a person's e-mail and name as written in text and as escaped in stored JSON."""
    needles = set()
    for text in (email, name):
        needles.update((text.lower(), json.dumps(text)[1:-1].lower()))
    return sorted(needles, key=len, reverse=True)


def _pattern(needles: list[str]) -> re.Pattern:
    alternatives = "|".join(re.escape(n) for n in needles)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _scrub_details(people: sa.Select) -> None:
    """Remove the erased people's e-mail, name and device names from their events' details."""
    events = AuditEvent.__table__.c
    text = sa.cast(events.details, sa.Text)
    folded = sa.func.lower(text)
    # SQL picks the few events that may name their person: the e-mail or name appears as is,
    # or the text holds a JSON escape (JSON stores a non-ASCII name as a backslash-u escape), or a device.
    # Python then decides exactly.
    def linked_through(column) -> sa.Select:
        return (
            sa.select(events.id, events.actor_user_id, events.subject_user_id, text,
                      User.id.label("person"), User.email, User.name)
            .join(User, User.id == column)
            .where(column.in_(people), text != "{}")
            .where(sa.or_(
                folded.contains(sa.func.lower(User.email)),
                folded.contains(sa.func.lower(User.name)),
                text.contains("\\", autoescape=True),
                *(text.contains(f'"{key}"', autoescape=True) for key in PERSONAL_DETAILS),
            ))
        )

    # One query per link (actor, subject), each through its own index.
    candidates = db.session.execute(
        sa.union_all(linked_through(events.actor_user_id), linked_through(events.subject_user_id))
    ).all()
    personal = [f'"{key}"' for key in PERSONAL_DETAILS]
    changed: dict[int, Any] = {}
    for event_id, actor_id, subject_id, raw, person, email, name in candidates:
        # An event's device is its subject's, or its actor's when it has no subject.
        owns = person == (subject_id if subject_id is not None else actor_id) and any(
            key in raw for key in personal)
        needles = _identifiers(email, name)
        if owns or any(n in raw.lower() for n in needles):
            details = changed.get(event_id) or json.loads(raw)
            changed[event_id] = _scrub(details, _pattern(needles), tombstone(person), owns)
    if changed:
        db.session.execute(
            sa.update(AuditEvent.__table__)
            .where(events.id == sa.bindparam("event_id"))
            .values(details=sa.bindparam("new_details")),
            [{"event_id": k, "new_details": v} for k, v in changed.items()],
        )


def _takes_row_locks() -> bool:
    """Tell whether the database locks rows (PostgreSQL); SQLite serialises writers instead."""
    return db.session.get_bind().dialect.name != "sqlite"


def _erase_people(erased: sa.ColumnElement[bool], report: PurgeReport) -> None:
    """Erase the people the condition ``erased`` (on users) names; no commit.

    Their audit events stay (same count) under the pseudonym "deleted user #<id>", without
    name, e-mail, IP or device name; their devices, links and e-mail are deleted with them,
    and so are their memberships (cascade). Who they are is worked out once, into a
    temporary table every statement then joins: no statement re-derives them or carries
    thousands of ids.
    """
    connection = db.session.connection()
    ERASED.create(connection, checkfirst=True)
    db.session.execute(sa.delete(ERASED))  # a pooled connection may hold an earlier batch
    found = db.session.execute(
        sa.insert(ERASED).from_select(["id"], sa.select(User.id).where(erased))
    ).rowcount
    if not found:
        return
    if _takes_row_locks():
        # Lock, then look again: a person being linked to an account right now either shows
        # that membership here (and stays) or waits for this transaction, then fails.
        db.session.execute(
            sa.select(User.id).where(User.id.in_(sa.select(ERASED.c.id))).with_for_update()
        ).all()
        db.session.execute(
            sa.delete(ERASED).where(~sa.exists(sa.select(User.id).where(erased, User.id == ERASED.c.id)))
        )
        # PostgreSQL never analyses temporary tables by itself; without numbers it plans the
        # joins below as if the table were empty or huge.
        db.session.execute(sa.text(f"ANALYZE {ERASED.name}"))
    people = sa.select(ERASED.c.id)
    events = AuditEvent.__table__.c
    _scrub_details(people)
    as_actor = events.actor_user_id.in_(people)
    as_subject = events.subject_user_id.in_(people)
    # Counted once each: an event they both caused and were the subject of is one event.
    both = _count(sa.select(events.id).where(as_actor, as_subject))
    # Two narrow updates rather than one wide one: each touches only its own column's index.
    # Their own addresses go too: events they caused, and anonymous attempts at their account.
    caused = db.session.execute(
        sa.update(AuditEvent.__table__).where(as_actor).values(
            actor_label=TOMBSTONE + sa.cast(events.actor_user_id, sa.String),
            actor_user_id=None,
            ip=None,
        )
    ).rowcount
    about = db.session.execute(
        sa.update(AuditEvent.__table__).where(as_subject).values(
            subject_label=TOMBSTONE + sa.cast(events.subject_user_id, sa.String),
            subject_user_id=None,
            ip=sa.case((events.actor_user_id.is_(None), None), else_=events.ip),
        )
    ).rowcount
    report.audit_events += caused + about - both
    for table, counter in ((OutboxMessage.__table__, "mails"), (ActionToken.__table__, "tokens"),
                           (Device.__table__, "devices")):
        deleted = db.session.execute(sa.delete(table).where(table.c.user_id.in_(people))).rowcount
        setattr(report, counter, getattr(report, counter) + deleted)
    report.people += db.session.execute(
        sa.delete(User.__table__).where(User.__table__.c.id.in_(people))
    ).rowcount


def _first_and_last(stmt: sa.Select, batch: int) -> tuple[int, int] | None:
    """Return the id range of the first ``batch`` rows ``stmt`` selects (ids, in order).

    On PostgreSQL the rows are locked for this transaction (a restore racing the purge waits
    or has already won); SQLite serialises writers, so two numbers are all it needs.
    """
    limited = stmt.limit(batch)
    if _takes_row_locks():
        ids = db.session.scalars(limited.with_for_update()).all()
        return (ids[0], ids[-1]) if ids else None
    ids = limited.subquery()
    low, high = db.session.execute(sa.select(sa.func.min(ids.c[0]), sa.func.max(ids.c[0]))).one()
    return None if low is None else (low, high)


def _purge_batch(report: PurgeReport, batch: int) -> bool:
    """Purge one batch of expired memberships and erase who is left with none; commit.

    The batch is an id range of expired memberships, so every statement names it with two
    numbers; a membership restored meanwhile is no longer expired and drops out of it.
    """
    found = _first_and_last(
        sa.select(Membership.id).where(Membership.deleted_at < report.cutoff)
        .order_by(Membership.id),
        batch,
    )
    if found is None:
        db.session.commit()
        return False
    low, high = found

    def in_batch(m) -> sa.ColumnElement[bool]:
        return sa.and_(m.deleted_at < report.cutoff, m.id.between(low, high))

    def outside(m) -> sa.ColumnElement[bool]:
        # Spelled out rather than ~in_batch(m): NOT (NULL < cutoff AND ...) is NULL, not true,
        # and would count a live membership as part of the batch.
        return sa.or_(m.deleted_at.is_(None), m.deleted_at >= report.cutoff,
                      m.id < low, m.id > high)

    quiet = {"synchronize_session": False}
    expiring = sa.select(Membership.id).where(in_batch(Membership))
    report.memberships += _count(expiring)
    report.group_memberships += db.session.execute(
        sa.delete(GroupMember).where(GroupMember.membership_id.in_(expiring)),
        execution_options=quiet,
    ).rowcount
    # Mail about the membership (its invitation, a refusal notice to the inviter).
    report.mails += db.session.execute(
        sa.delete(OutboxMessage).where(OutboxMessage.membership_id.in_(expiring)),
        execution_options=quiet,
    ).rowcount
    other = so.aliased(Membership)
    _erase_people(
        sa.and_(
            User.id.in_(sa.select(Membership.user_id).where(in_batch(Membership))),
            ~sa.exists().where(other.user_id == User.id, outside(other)),
        ),
        report,
    )
    # What is left of the batch: memberships of people who stay in other accounts.
    db.session.execute(sa.delete(Membership).where(in_batch(Membership)), execution_options=quiet)
    db.session.commit()
    return True


def _sweep_batch(report: PurgeReport, batch: int) -> bool:
    """Erase one batch of people who have no membership at all (whatever removed it); commit."""
    no_membership = ~sa.exists().where(Membership.user_id == User.id)
    found = _first_and_last(sa.select(User.id).where(no_membership).order_by(User.id), batch)
    if found is None:
        db.session.commit()
        return False
    _erase_people(sa.and_(User.id.between(*found), no_membership), report)
    db.session.commit()
    return True


def purge_expired(now: datetime | None = None, dry_run: bool = False,
                  batch: int = PURGE_BATCH) -> PurgeReport:
    """Hard-delete memberships past retention and erase the people left with no membership.

    Each batch is its own short transaction holding whole people, so a purge killed half-way
    leaves nothing half-erased and running it again finishes the job; a second run finds
    nothing. Safe from cron while the app serves.
    """
    if batch < 1:
        raise ServiceError("The batch size must be at least 1.", "batch")
    report = PurgeReport(cutoff=(now or utcnow()) - retention(), dry_run=dry_run)
    if dry_run:
        return _dry_run(report)
    while _purge_batch(report, batch):
        pass
    while _sweep_batch(report, batch):
        pass
    return report
