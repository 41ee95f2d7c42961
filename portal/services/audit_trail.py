"""The account's audit trail as admins read it: filtered, paged newest first (keyset), exported.

Recording events is ``services/audit.py``; this module only reads. Every query starts from
``scope.in_account``: an admin never sees another account's events, whatever the request asks.

Paging is keyset, never OFFSET: a page is the ``size`` events just older (or newer) than one
event, ordered by (created_at, id). Each filter walks its own index that starts with the account
and ends with that order (models/audit.py), and filters matching several values (a topic's
actions, everyone whose name matches) are one ordered, limited branch per value, merged: so a
page reads about ``size`` rows per branch at a million events, on SQLite's planner as on
PostgreSQL's.
"""
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Membership
from portal.models import User
from portal.services import audit
from portal.services import people
from portal.services import scope
from portal.services.csv_cells import neutralise
from portal.services.csv_export import Export
from portal.services.csv_export import filename_for
from portal.services.errors import ServiceError
from portal.services.paging import KeysetPage

PAGE_SIZE = 50
# A name or address typed as "who" or "whom" may match this many people at most.
MAX_PEOPLE = 20
EXPORT_BATCH = 2000
EXPORT_COLUMNS = ("When (UTC)", "Who", "What", "Whom", "Concerning", "Details", "Address")

# The "what" filter: topics of the trail, each a set of actions (an exact action works too).
TOPICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sign-ins": ("Sign-ins and sign-outs", (
        "login", "logout", "account.chosen", "device.logged_out", "device.logged_out_elsewhere",
        "device.limit_logout", "invitation.accepted", "password.reset", "password.changed",
        "password.reset_requested", "second_factor.used", "recovery_code.used",
    )),
    "failures": ("Failed sign-ins", (
        "login.failed", "login.throttled", "second_factor.failed", "invitation.wrong_password",
    )),
    "admin": ("Admin changes", (
        "user.added", "user.updated", "user.role_changed", "password.reset_sent",
        "invitation.resent", "device.revoked", "second_factor.reset_by_admin",
        "activity_report.sent", "settings.changed", "account.device_limit",
        "group.created", "group.renamed", "group.deleted", "group.member_added",
        "group.member_removed", "taskstream.created", "taskstream.renamed", "taskstream.deleted",
        "step.added", "step.moved", "step.removed", "step.assigned", "scim_token.created",
        "scim_token.revoked", "saved_view.created", "saved_view.renamed", "saved_view.deleted",
    )),
    "imports": ("Imports", (
        "users.imported", "users.import_failed", "users.import_undone", "user.added",
    )),
    "exports": ("Exports", ("users.exported", "audit.exported")),
    "deletions": ("Deletions and restores", (
        "user.deleted", "user.restored", "group.deleted", "taskstream.deleted",
    )),
    "purges": ("Purges", ("users.purged",)),
    "refused": ("Refused requests for another account's ids", (audit.REFUSED,)),
}
# Details keys that name what an event concerns, in the words of the page and the e-mail.
CONCERNS = (("group", "group"), ("taskstream", "taskstream"), ("device", "device"),
            ("step", "step"), ("file", "file"))


@dataclass(frozen=True)
class TrailFilter:
    """What the admin asked for: who acted, whom it concerned, what, from and to (dates)."""

    who: str = ""
    whom: str = ""
    what: str = ""
    since: date | None = None
    until: date | None = None

    def query(self) -> dict[str, str]:
        """Return the filter as URL parameters (empty ones left out)."""
        values = {"who": self.who, "whom": self.whom, "what": self.what,
                  "from": self.since.isoformat() if self.since else "",
                  "to": self.until.isoformat() if self.until else ""}
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class InAccount:
    """An account to scope by (``scope.in_account`` reads only ``account_id``)."""

    account_id: int


@dataclass(frozen=True)
class TrailRow:
    """One event as the page and the export show it."""

    id: int
    at: datetime
    who: str
    what: str
    action: str
    whom: str
    concerns: str
    details: str
    ip: str


@dataclass
class TrailPage(KeysetPage):
    """One page of the trail, with the filter that chose it and the choices of "what"."""

    filter: TrailFilter = field(default_factory=TrailFilter)
    topics: list[tuple[str, str]] = field(default_factory=list)
    notice: str = ""


def what_label(action: str) -> str:
    """Return an action in words: "group.member_added" → "group member added"."""
    return action.replace(".", " ").replace("_", " ")


def concerning(details: dict[str, Any] | None, action: str = "") -> str:
    """Name the group, taskstream, device, step or file an event concerns, from its details."""
    details = details or {}
    named = []
    for key, word in CONCERNS:
        value = details.get(key)
        if isinstance(value, str) and value:
            named.append(f"{word} “{value}”")
    # Events about one group or taskstream keep its name under "name" (or old → new).
    prefix = action.split(".", 1)[0]
    if prefix in ("group", "taskstream") and not any(k == prefix for k, _w in CONCERNS
                                                     if details.get(k)):
        name = details.get("name") or details.get("new")
        if isinstance(name, str) and name:
            named.insert(0, f"{prefix} “{name}”")
    if prefix == "step" and "step" not in details and isinstance(details.get("name"), str):
        named.append(f"step “{details['name']}”")
    return ", ".join(named)


def _details_text(details: dict[str, Any] | None) -> str:
    return "; ".join(f"{k}: {v}" for k, v in sorted((details or {}).items())
                     if k not in ("group", "taskstream", "device", "step", "file"))


# Read as plain rows (no ORM identity map), so an export of a million events stays flat.
EVENT_COLUMNS = (AuditEvent.id, AuditEvent.created_at, AuditEvent.actor_label,
                 AuditEvent.subject_label, AuditEvent.action, AuditEvent.details, AuditEvent.ip)


def _events(ids: list[int]) -> list:
    """Return the events with these ids, in the order of ``ids``."""
    if not ids:
        return []
    found = {e.id: e for e in db.session.execute(
        sa.select(*EVENT_COLUMNS).where(AuditEvent.id.in_(ids)))}
    return [found[i] for i in ids]


def _row(event) -> TrailRow:
    return TrailRow(
        id=event.id, at=event.created_at, who=event.actor_label or "—",
        what=what_label(event.action), action=event.action, whom=event.subject_label or "",
        concerns=concerning(event.details, event.action), details=_details_text(event.details),
        ip=event.ip or "",
    )


def _people(actor, text: str) -> list[int]:
    """Return the people of the account (deleted ones too) whose e-mail or name, as this account
    sees it, matches ``text``: the whole address, or a part of the name or address."""
    text = text.strip()
    stmt = scope.in_account(
        sa.select(Membership.user_id).join(User, User.id == Membership.user_id), Membership, actor
    )
    if "@" in text:
        try:
            stmt = stmt.where(User.email == people.normalise_email(text, "who"))
        except ServiceError:
            stmt = stmt.where(User.email.contains(text.lower(), autoescape=True))
    else:
        stmt = stmt.where(sa.or_(
            sa.func.lower(people.shown_name()).contains(text.lower(), autoescape=True),
            User.email.contains(text.lower(), autoescape=True),
        ))
    return list(db.session.scalars(stmt.order_by(Membership.user_id).limit(MAX_PEOPLE)))


def _actions(what: str) -> tuple[str, ...]:
    if what in TOPICS:
        return TOPICS[what][1]
    known = {a for _label, actions in TOPICS.values() for a in actions}
    if what in known:
        return (what,)
    raise ServiceError("Choose what from the list.", "what")


def check_filter(trail_filter: TrailFilter) -> None:
    """Refuse a filter that cannot be read (a "to" before "from", an unknown "what")."""
    if trail_filter.what:
        _actions(trail_filter.what)
    if trail_filter.since and trail_filter.until and trail_filter.until < trail_filter.since:
        raise ServiceError("“To” is before “From”.", "to")


def _conditions(actor, f: TrailFilter) -> tuple[list, tuple | None, str]:
    """Return (common conditions, the filter walked one value at a time as (column, values), or
    None for no such filter, notice); the values are [] when nobody matches."""
    common = []
    if f.since:
        common.append(AuditEvent.created_at >= datetime.combine(f.since, time.min))
    if f.until:
        common.append(AuditEvent.created_at < datetime.combine(f.until + timedelta(days=1),
                                                               time.min))
    by_value = []
    for text, column in ((f.whom, AuditEvent.subject_user_id),
                         (f.who, AuditEvent.actor_user_id)):
        if not text.strip():
            continue
        ids = _people(actor, text)
        if not ids:
            return common, (column, []), f"Nobody in this account matches “{text.strip()}”."
        by_value.append((column, ids))
    if f.what:
        by_value.append((AuditEvent.action, list(_actions(f.what))))
    if not by_value:
        return common, None, ""
    # The first filter (whom, then who, then what) walks its index one value at a time;
    # the others narrow each walk.
    (column, values), rest = by_value[0], by_value[1:]
    common += [c.in_(vs) for c, vs in rest]
    return common, (column, values), ""


ORDER_COLUMNS = (AuditEvent.created_at, AuditEvent.id)


def _page_ids(actor, f: TrailFilter, cursor: tuple[datetime, int] | None, newer: bool,
              limit: int) -> tuple[list[int], str]:
    common, walked, notice = _conditions(actor, f)
    if walked is not None and not walked[1]:
        return [], notice
    key = sa.tuple_(*ORDER_COLUMNS)
    order = [c.asc() for c in ORDER_COLUMNS] if newer else [c.desc() for c in ORDER_COLUMNS]
    stmt = scope.in_account(sa.select(*ORDER_COLUMNS), AuditEvent, actor).where(*common)
    if cursor is not None:
        stmt = stmt.where(key > sa.tuple_(*cursor) if newer else key < sa.tuple_(*cursor))
    column, values = walked or (None, [None])
    if column is None:
        merged = stmt.order_by(*order).limit(limit).subquery()
    elif len(values) == 1:
        merged = stmt.where(column == values[0]).order_by(*order).limit(limit).subquery()
    elif db.engine.dialect.name == "postgresql":
        # One walk per value as a LATERAL subquery over the values: one small statement to
        # build and to plan (a UNION of 27 arms cost PostgreSQL more to plan than to run).
        # (The values are one array parameter: the statement's compiled form is cached.)
        value = sa.func.unnest(sa.bindparam("walked", values, type_=ARRAY(column.type))) \
            .table_valued(sa.column("value", column.type)).render_derived(name="walked")
        merged = stmt.where(column == value.c.value).order_by(*order).limit(limit).lateral()
        outer = sa.select(merged.c.id).select_from(value).join(merged, sa.true())
        return list(db.session.scalars(outer.order_by(
            *[c.asc() if newer else c.desc() for c in (merged.c.created_at, merged.c.id)]
        ).limit(limit))), notice
    else:
        # SQLite: one ordered, limited arm per value, merged.
        merged = sa.union_all(*[
            sa.select(stmt.where(column == v).order_by(*order).limit(limit).subquery())
            for v in values]).subquery()
    by = (merged.c.created_at, merged.c.id)
    outer = sa.select(merged.c.id).order_by(
        *[c.asc() if newer else c.desc() for c in by]).limit(limit)
    return list(db.session.scalars(outer)), notice


def _cursor(actor, event_id) -> tuple[datetime, int] | None:
    number = scope.parse_id(event_id)
    if number is None:
        return None
    found = db.session.execute(
        scope.in_account(sa.select(*ORDER_COLUMNS).where(AuditEvent.id == number),
                         AuditEvent, actor)
    ).first()
    return (found[0], found[1]) if found else None


def trail_page(actor, trail_filter: TrailFilter, *, before=None, after=None,
               size: int | None = None) -> TrailPage:
    """Return one page of the account's trail, newest first: the first page, the one just older
    than event ``before`` or just newer than event ``after`` (an id not of this account's trail
    is ignored: the first page)."""
    check_filter(trail_filter)
    size = size or PAGE_SIZE
    cursor = _cursor(actor, after if after is not None else before)
    newer = after is not None and cursor is not None
    ids, notice = _page_ids(actor, trail_filter, cursor, newer, size + 1)
    more = len(ids) > size
    ids = ids[:size]
    if newer:
        ids.reverse()
    rows = [_row(e) for e in _events(ids)]
    has_newer = (more if newer else cursor is not None) and bool(rows)
    has_older = (True if newer else more) and bool(rows)
    return TrailPage(
        rows=rows, size=size,
        newer=rows[0].id if has_newer else None,
        older=rows[-1].id if has_older else None,
        filter=trail_filter,
        topics=[(key, label) for key, (label, _actions) in TOPICS.items()],
        notice=notice,
    )


def _export_chunks(actor, trail_filter: TrailFilter) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    yield "\ufeff".encode() + buffer.getvalue().encode()
    cursor = None
    try:
        while True:
            ids, _notice = _page_ids(actor, trail_filter, cursor, False, EXPORT_BATCH)
            if not ids:
                break
            events = _events(ids)
            buffer.seek(0)
            buffer.truncate()
            for row in map(_row, events):
                writer.writerow((row.at.strftime("%Y-%m-%d %H:%M:%S"), neutralise(row.who),
                                 row.action, neutralise(row.whom), neutralise(row.concerns),
                                 neutralise(row.details), row.ip))
            yield buffer.getvalue().encode()
            cursor = (events[-1].created_at, events[-1].id)
            if len(ids) < EXPORT_BATCH:
                break
    finally:
        db.session.rollback()


def export_trail(actor, trail_filter: TrailFilter) -> Export:
    """Export the filtered trail as CSV, newest first, streamed in keyset batches; audited."""
    check_filter(trail_filter)
    audit.record(actor, "audit.exported", **trail_filter.query())
    # The rows are read after this returns, while the download streams: by the account's id
    # alone (the actor's row is not read again).
    reader = InAccount(actor.account_id)
    filename = filename_for(actor.account.name, date.today(), kind="audit")
    db.session.commit()
    return Export(filename, None, _export_chunks(reader, trail_filter))
