"""Checking a CSV upload row by row against the account: the preview, and what an import writes.

``preview_csv`` writes nothing; ``check_table`` is what the import runs again, on the database as
it is at that moment.
"""
import gc
import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import ARRAY
from flask import current_app

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import User
from portal.services import people
from portal.services import scope
from portal.services.csv_cells import restore
from portal.services.csv_read import DELIMITER_NAMES
from portal.services.csv_read import Table
from portal.services.csv_read import read_table
from portal.services.errors import ServiceError
from portal.services.groups import clean_group_name

NEW = "new"
UPDATE = "update"
SKIP = "skip"
INVALID = "invalid"
STATUS_LABELS = {
    NEW: "new",
    UPDATE: "already in this account, will be updated",
    SKIP: "already in this account (skipped)",
    INVALID: "invalid",
}
# An address that is a person elsewhere is "new" here, as any other (DESIGN §1: nothing of one
# account shows in another); the import tells them apart only when it writes.
IMPORTABLE = (NEW, UPDATE)
# RFC 5322 dot-atom: email-validator's own rule for a plain ASCII local part.
_ATEXT = r"a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~"
_PLAIN_LOCAL = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*\Z")


@dataclass(slots=True)
class Row:
    """One data line of the file and what importing it would do."""

    line: int
    name: str
    email: str
    groups: tuple[str, ...] = ()
    phone: str | None = None
    key: str | None = None
    status: str = NEW
    reason: str = ""
    note: str = ""
    has_password: bool = False
    cells: list[str] = field(default_factory=list)  # the values read, as in the file
    # Update existing users: (what, old, new) per change, e.g. ("Phone", "", "+4420…").
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    add_groups: tuple[str, ...] = ()
    warnings: int = 0  # values left out (an invalid phone), each told in the note
    # Whose name and phone an update changes: the person's own (OWN), this account's typed
    # ones for someone who has not accepted its invitation (LOCAL), or none (KEPT).
    target: str = "own"

    @property
    def label(self) -> str:
        return self.reason if self.status == INVALID else STATUS_LABELS[self.status]

    def warn(self, text: str) -> None:
        self.note = f"{self.note}; {text}" if self.note else text


@dataclass
class Preview:
    """What an import of the file would do, row by row, before anything is written."""

    encoding: str
    delimiter: str | None
    columns: list[str]
    ignored: list[str]
    rows: list[Row]
    new_groups: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # every column of the file, in order
    read_as: str | None = None  # the encoding the admin chose, if any
    update: bool = False  # Update existing users

    @property
    def counts(self) -> Counter:
        return Counter(row.status for row in self.rows)

    @property
    def importable(self) -> int:
        counts = self.counts
        return counts[NEW] + counts[UPDATE]

    @property
    def format(self) -> str:
        if self.delimiter is None:
            return self.encoding
        return f"{self.encoding}, values separated by {DELIMITER_NAMES[self.delimiter]}"

    @property
    def is_text(self) -> bool:
        """A CSV file (which Read as … can re-read), not a workbook."""
        return self.delimiter is not None

    def summary(self) -> str:
        """Return the one-line count of what would happen."""
        c = self.counts
        updates = f"{c[UPDATE]:,} to update, " if self.update else ""
        return (
            f"{plural(len(self.rows), 'row')}: {c[NEW]:,} new, {updates}"
            f"{c[SKIP]:,} already in this account (skipped), {c[INVALID]:,} invalid."
        )

    def cells_of(self, row: Row) -> list[str]:
        """Return the row's value in each column of the file ("" where the line ends early)."""
        cells = row.cells
        width = len(self.labels)
        return cells[:width] + [""] * (width - len(cells))


def plural(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


class EmailKeys:
    """Canonical e-mail keys exactly as ``people.normalise_email`` makes them, at import speed.

    email-validator takes about 26 µs an address (2.6 s for 100,000 rows). A plain ASCII local
    part is checked with email-validator's own dot-atom rule and each distinct domain once
    through the library; anything else goes through ``people.normalise_email`` as it is.
    """

    def __init__(self) -> None:
        self.domains: dict[str, tuple[str, int] | None] = {}

    def _domain(self, domain: str) -> tuple[str, int] | None:
        try:
            result = people.validate_address("a@" + domain)
        except ServiceError:
            return None
        longest = max(len(domain.encode()), len(result.domain.encode()), len(result.ascii_domain))
        return result.domain, longest

    def key(self, value: str) -> str:
        local, at, domain = value.rpartition("@")
        if at and _PLAIN_LOCAL.match(local):
            known = self.domains.get(domain, False)
            if known is False:
                known = self.domains[domain] = self._domain(domain)
            if known is not None and len(local) + 1 + known[1] <= 254:
                return (local + "@" + known[0]).lower()
        return people.normalise_email(value)


class _Checker:
    """Validate rows one by one, remembering what earlier lines of the file held."""

    def __init__(self, header: dict[str, int], width: int):
        self.width = width
        self.name_at = header["name"]
        self.email_at = header["email"]
        self.groups_at = header.get("groups")
        self.phone_at = header.get("phone")
        self.emails = EmailKeys()
        self.seen: dict[str, tuple[int, str]] = {}
        self.group_cells: dict[str, tuple[str, ...] | str] = {"": ()}
        self.group_names: dict[str, str] = {}

    def _group(self, part: str) -> str:
        name = self.group_names.get(part)
        if name is None:
            name = self.group_names[part] = clean_group_name(part)
        return name

    def _groups(self, cell: str) -> tuple[str, ...] | str:
        cached = self.group_cells.get(cell)
        if cached is None:
            names: dict[str, str] = {}
            try:
                for part in restore(cell).split(";"):
                    if part and not part.isspace():
                        name = self._group(part)
                        names.setdefault(name.lower(), name)
                cached = tuple(names.values())
            except ServiceError as error:
                cached = f"Groups: {error.message}"
            self.group_cells[cell] = cached
        return cached

    def check(self, line: int, cells: list[str]) -> Row:
        """Return the row with its status: new, or invalid with the reason."""
        row = self._check(line, cells)
        row.cells = cells
        return row

    def _phone(self, row: Row, cell: str) -> None:
        """Set the row's phone; a number that does not validate is left out with a warning.

        Digits only (a spreadsheet keeps +44 20 7946 0958 typed without spaces as the number
        442079460958) are read as an international number.
        """
        value = restore(cell).strip()
        try:
            row.phone = people.normalise_phone(value)
            return
        except ServiceError as error:
            message = error.message
        if value.isdigit() and value[0] != "0":
            try:
                row.phone = people.normalise_phone("+" + value)
                return
            except ServiceError as error:
                message = error.message
        reason = "is not a valid number" if "not valid" in message else "is not a phone number"
        row.warn(f"phone left empty: {value} {reason}")
        row.warnings += 1

    def _check(self, line: int, cells: list[str]) -> Row:
        if len(cells) != self.width:
            if len(cells) < self.width or any(c.strip() for c in cells[self.width:]):
                return self._ragged(line, cells)
            cells = cells[:self.width]  # empty cells beyond the header, as spreadsheets write
        name = cells[self.name_at]
        raw = cells[self.email_at]
        if name[:1] == "'":
            name = restore(name)
        if raw[:1] == "'":
            raw = restore(raw)
        raw = raw.strip()
        try:
            name = people.clean_name(name)
        except ServiceError as error:
            return _invalid(Row(line, name, raw), error.message if name.strip() else
                            "Full Name is missing")
        groups = self._groups(cells[self.groups_at]) if self.groups_at is not None else ()
        if groups.__class__ is str:
            return _invalid(Row(line, name, raw), groups)
        if not raw:
            return _invalid(Row(line, name, raw, groups), "Email is missing")
        try:
            key = self.emails.key(raw)
        except ServiceError as error:
            return _invalid(Row(line, name, raw, groups), error.message)
        earlier = self.seen.get(key)
        if earlier is not None:
            first_line, first_raw = earlier
            if first_raw != raw and first_raw.lower() == raw.lower():
                reason = f"differs only in case from line {first_line}"
            else:
                reason = f"duplicate of line {first_line}"
            return _invalid(Row(line, name, raw, groups), reason)
        self.seen[key] = (line, raw)
        row = Row(line, name, raw, groups, None, key)
        if not key.isascii():
            row.note = "contains non-ASCII letters; check it is not a look-alike of another address"
        if self.phone_at is not None and cells[self.phone_at].strip():
            self._phone(row, cells[self.phone_at])
        return row

    def _ragged(self, line: int, cells: list[str]) -> Row:
        def cell(index: int) -> str:
            return restore(cells[index]).strip() if index < len(cells) else ""

        return _invalid(
            Row(line, cell(self.name_at), cell(self.email_at)),
            f"has {len(cells)} values but the header has {self.width} columns "
            "(a value with a comma or semicolon in it needs quotes)",
        )


def _invalid(row: Row, reason: str) -> Row:
    row.status = INVALID
    row.reason = reason
    return row


def _one_of(column: sa.ColumnElement, values: list[str]) -> sa.ColumnElement:
    """Return ``column IN values`` with the list sent as ONE parameter.

    An expanding IN costs SQLAlchemy microseconds per value (0.4 s for 100,000) and SQLite
    caps the number of parameters; a JSON array (SQLite) or an array (PostgreSQL) costs none.
    """
    if db.session.get_bind().dialect.name == "sqlite":
        each = sa.func.json_each(json.dumps(values)).table_valued("value")
        return column.in_(sa.select(each.c.value))
    return column == sa.any_(sa.bindparam("values", values, type_=ARRAY(sa.String)))


# Update existing users: whose name and phone a row changes (Row.target).
OWN = "own"  # the person's own: they belong to this account alone and never set them
LOCAL = "local"  # what this account typed: they have not accepted its invitation yet
KEPT = "kept"  # neither: the person's own, which this account may not change
KEPT_NOTES = {
    "elsewhere": "name and phone not changed: they are the person's own, and they belong to "
                 "another organisation too",
    "own": "name and phone not changed: the person set them themselves",
}
LOCAL_NOTE = ("name and phone change for this account only: the person has not accepted "
              "its invitation yet")


@dataclass(slots=True)
class Known:
    """A person the file names who is already known, and their membership here, if any.

    ``name`` and ``phone`` are those this account sees (DESIGN §1: nothing of another account).
    """

    has_password: bool
    membership_id: int | None
    deleted: bool
    name: str
    phone: str | None
    group_keys: frozenset[str] = frozenset()
    target: str = OWN
    kept: str = ""  # why name and phone stay as they are (a key of KEPT_NOTES)


def _identity(actor) -> tuple[sa.ColumnElement, sa.ColumnElement]:
    """Return (belongs to another account, set their own profile) of each person, as SQL."""
    elsewhere = so.aliased(Membership)
    in_other = sa.exists().where(elsewhere.user_id == User.id,
                                 elsewhere.account_id != actor.account_id,
                                 elsewhere.deleted_at.is_(None))
    self_set = sa.exists().where(AuditEvent.subject_user_id == User.id,
                                 AuditEvent.actor_user_id == User.id,
                                 AuditEvent.action == "profile.updated")
    return in_other, self_set


def _existing(actor, keys: list[str], with_groups: bool) -> dict[str, Known]:
    """Return {email: Known} for the people already known (with their groups here).

    With ``with_groups`` (Update existing users) also whose name and phone an update may
    change (Known.target).
    """
    in_other, self_set = _identity(actor) if with_groups else (sa.false(), sa.false())
    stmt = (
        sa.select(User.email, User.password_hash.is_not(None), Membership.id,
                  Membership.deleted_at.is_not(None), people.shown_name(), people.shown_phone(),
                  Membership.invited_name.is_not(None), in_other, self_set)
        .outerjoin(
            Membership,
            sa.and_(Membership.user_id == User.id, Membership.account_id == actor.account_id),
        )
        .where(_one_of(User.email, keys))
    )
    known = {}
    for (email, has_password, membership_id, deleted, name, phone, awaiting, other,
         own) in db.session.execute(stmt):
        entry = known[email] = Known(bool(has_password), membership_id, bool(deleted), name,
                                     phone)
        if awaiting:
            entry.target = LOCAL
        elif other or own:
            entry.target, entry.kept = KEPT, "elsewhere" if other else "own"
    if with_groups:
        by_membership = {k.membership_id: k for k in known.values()
                         if k.membership_id is not None and not k.deleted}
        groups: dict[int, set[str]] = {}
        stmt = (
            sa.select(GroupMember.membership_id, Group.name_key)
            .join(Group, Group.id == GroupMember.group_id)
            .join(Membership, Membership.id == GroupMember.membership_id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.account_id == actor.account_id, _one_of(User.email, keys))
        )
        for membership_id, name_key in db.session.execute(stmt):
            groups.setdefault(membership_id, set()).add(name_key)
        for membership_id, entry in by_membership.items():
            entry.group_keys = frozenset(groups.get(membership_id, ()))
    return known


def _changes(row: Row, known: Known) -> None:
    """Fill in what Update existing users would change for this person, and whose values."""
    row.target = known.target
    if known.target == KEPT:
        row.warn(KEPT_NOTES[known.kept])
    else:
        if row.name != known.name:
            row.changes.append(("Full Name", known.name, row.name))
        if row.phone is not None and row.phone != known.phone:
            row.changes.append(("Phone", known.phone or "", row.phone))
        if row.changes and known.target == LOCAL:
            row.warn(LOCAL_NOTE)
    row.add_groups = tuple(g for g in row.groups if g.lower() not in known.group_keys)
    if row.add_groups:
        row.changes.append(("Groups", "", "+ " + ", ".join(row.add_groups)))


def check_table(actor, table: Table, *, update: bool = False) -> Preview:
    """Return every row of the table with its status: new, skipped or invalid.

    With ``update``, a person already in this account whose row changes their name, phone or
    groups is to be updated (the changes listed old → new), not skipped.
    """
    checker = _Checker(table.header, table.width)
    rows = [checker.check(line, cells) for line, cells in table.records]
    valid = [row for row in rows if row.status != INVALID]
    existing = _existing(actor, [row.key for row in valid], update)
    for row in valid:
        known = existing.get(row.key)
        if known is None or known.membership_id is None:
            continue  # new here, whether or not they are a person elsewhere
        row.has_password = known.has_password
        if known.deleted:
            row.status = SKIP
            row.note = "deleted from this account; restore them from Deleted users instead"
        elif update:
            _changes(row, known)
            row.status = UPDATE if row.changes else SKIP
            if not row.changes and row.target != KEPT:
                row.warn("nothing to change")
        else:
            row.status = SKIP
    columns = [c for c, _ in sorted(table.header.items(), key=lambda item: item[1])]
    return Preview(table.encoding, table.delimiter, columns, table.ignored, rows,
                   labels=table.labels, update=update)


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while 100,000s of rows are built.

    Every 700 new container objects it walks all live ones, which grow by the row: that is
    a third of the parsing time, for cycles these rows never form.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def preview_csv(actor, data: bytes, *, read_as: str | None = None,
                update: bool = False) -> Preview:
    """Return what importing the file would do, row by row; write nothing.

    ``read_as`` reads a CSV file in that encoding (a key of csv_encodings.READ_AS) instead of
    the one its bytes point to; ``update`` previews Update existing users.
    """
    with no_cyclic_gc():
        table = read_table(data, current_app.config["IMPORT_MAX_ROWS"], read_as)
        preview = check_table(actor, table, update=update)
        preview.read_as = read_as
        preview.new_groups = groups_to_create(
            actor, [row for row in preview.rows if row.status in IMPORTABLE]
        )
    db.session.rollback()
    return preview




def groups_to_create(actor, rows: list[Row]) -> list[str]:
    """Return the group names these rows name that the account does not have yet."""
    present = set(db.session.scalars(scope.in_account(sa.select(Group.name_key), Group, actor)))
    wanted: dict[str, str] = {}
    for names in {row.groups for row in rows}:
        for name in names:
            if name.lower() not in present:
                wanted.setdefault(name.lower(), name)
    return sorted(wanted.values(), key=str.lower)

