"""The purge (GDPR): an operator's job, no actor. What is past retention goes for good.

``purge_expired`` hard-deletes the memberships deleted more than ``RETENTION_DAYS`` ago and
erases the people left with no membership at all, anonymising the audit events that name them.
It runs from cron (``flask purge``) in short batches, each its own transaction.
"""
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import ARRAY

from portal.extensions import db
from portal.models import ActionToken
from portal.models import AuditEvent
from portal.models import Device
from portal.models import GroupMember
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import User
from portal.models import utcnow
from portal.services import audit
from portal.services.deletion import retention
from portal.services.errors import ServiceError

# The people one purge batch erases, for the length of its transaction (see _erase_people).
ERASED = sa.Table(
    "purge_erased_people", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
    # What the audit trail may name them by, read once (the scrub needs no join on users).
    sa.Column("email", sa.String(254)), sa.Column("name", sa.String(200)),
    prefixes=["TEMPORARY"],
)
# Memberships per purge transaction: each commits in tens of milliseconds (short locks).
PURGE_BATCH = 5_000
TOMBSTONE = "deleted user #"
# How the trail names the purge (it runs from cron, for no one account).
PURGE_ACTOR = "operator (purge)"
# Free-text details that describe the person's own things (an app may name a device
# "Alice's iPhone"); in an erased person's events they are replaced, not searched.
PERSONAL_DETAILS = ("device",)


def tombstone(user_id: int) -> str:
    """Return the pseudonym an erased person keeps in the audit trail."""
    return f"{TOMBSTONE}{user_id}"



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


def _of_erased(column, ids: list[int] | None = None) -> sa.ColumnElement[bool]:
    """Return "``column`` names one of the batch's people", planned through ``column``'s index.

    PostgreSQL is given the batch as an array (``= ANY(ARRAY(SELECT ...))``, computed once): an
    ``IN (SELECT ...)`` on a column with few distinct values (the audit trail's actors are a
    handful of admins) was planned as a hash join over a scan of the whole trail, per batch.
    The planner cannot see into that array: it guesses a few rows per distinct value, which
    walks the index of a column of many values (subjects, users, links) but takes every event
    an admin caused for the actor column, whose index it then leaves for a scan of the trail,
    each row compared with each of the 5,000 ids (0.7 s a batch of 5,000 people). So the actor
    column is given the batch's ``ids`` themselves: the planner sees that none is a busy actor
    and walks the index. The IS NOT NULL lets it use those partial indexes (WHERE column IS
    NOT NULL, migration 0025): it cannot tell that ``= ANY`` of a run-time array implies it.
    SQLite drives ``IN (SELECT ...)`` from the subquery through the index already.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return column.in_(sa.select(ERASED.c.id))
    if ids is not None:
        return column == sa.any_(sa.bindparam("erased", ids, type_=ARRAY(sa.Integer),
                                              unique=True))
    return sa.and_(column.is_not(None), column == sa.any_(
        sa.literal_column(f"ARRAY(SELECT id FROM {ERASED.name})")))


def _scrub_details(ids: list[int]) -> None:
    """Remove the erased people's e-mail, name and device names from their events' details."""
    events = AuditEvent.__table__.c
    text = sa.cast(events.details, sa.Text)
    folded = sa.func.lower(text)
    # SQL picks the few events that may name their person: the e-mail or name appears as is,
    # or the text holds a JSON escape (JSON stores a non-ASCII name as a backslash-u escape), or a device.
    # Python then decides exactly.
    # Through each link's index to the batch's people (_of_erased), who carry their e-mail and
    # name: PostgreSQL merged the whole trail with every user before narrowing to the batch, so
    # each batch of 5,000 read all 200,000 events (28% of erasing 100,000 people).
    def linked_through(column) -> sa.Select:
        return (
            sa.select(events.id, events.actor_user_id, events.subject_user_id, text,
                      ERASED.c.id.label("person"), ERASED.c.email, ERASED.c.name)
            .select_from(AuditEvent.__table__)
            .join(ERASED, ERASED.c.id == column)
            .where(_of_erased(column, ids if column is events.actor_user_id else None),
                   text != "{}")
            .where(sa.or_(
                folded.contains(sa.func.lower(ERASED.c.email)),
                folded.contains(sa.func.lower(ERASED.c.name)),
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
        sa.insert(ERASED).from_select(["id", "email", "name"],
                                      sa.select(User.id, User.email, User.name).where(erased))
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
    erased_ids = list(db.session.scalars(sa.select(ERASED.c.id)))
    events = AuditEvent.__table__.c
    _scrub_details(erased_ids)
    as_actor = _of_erased(events.actor_user_id, erased_ids)
    as_subject = _of_erased(events.subject_user_id)
    # Two narrow updates rather than one wide one: each touches only its own column's index.
    # Their own addresses go too: events they caused, and anonymous attempts at their account.
    caused_about = db.session.scalars(
        sa.update(AuditEvent.__table__).where(as_actor).values(
            actor_label=TOMBSTONE + sa.cast(events.actor_user_id, sa.String),
            actor_user_id=None,
            ip=None,
        ).returning(events.subject_user_id)
    ).all()
    caused = len(caused_about)
    # Counted once each: an event they both caused and were the subject of is one event. Told
    # from the events they caused (few), not by a query: PostgreSQL filtered the trail's rows
    # through the batch as an array, one search of 5,000 ids per row (31 s of 140).
    erased = set(erased_ids)
    both = sum(1 for subject in caused_about if subject in erased)
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
        deleted = db.session.execute(
            sa.delete(table).where(_of_erased(table.c.user_id))).rowcount
        setattr(report, counter, getattr(report, counter) + deleted)
    report.people += db.session.execute(
        sa.delete(User.__table__).where(_of_erased(User.__table__.c.id))
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
    # Each account's trail says what the purge took from it (one event per account and batch).
    purged = db.session.execute(
        sa.select(Membership.account_id, sa.func.count()).where(in_batch(Membership))
        .group_by(Membership.account_id).order_by(Membership.account_id)
    ).all()
    for account_id, count in purged:
        event = audit.record(None, "users.purged", account_id=account_id, count=count,
                             retention_days=retention().days)
        event.actor_label = PURGE_ACTOR
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
