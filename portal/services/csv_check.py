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
from sqlalchemy.dialects.postgresql import ARRAY
from flask import current_app

from portal.extensions import db
from portal.models import Group
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
LINK = "link"
SKIP = "skip"
INVALID = "invalid"
STATUS_LABELS = {
    NEW: "new",
    LINK: "existing person, will be linked",
    SKIP: "already in this account (skipped)",
    INVALID: "invalid",
}
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

    @property
    def label(self) -> str:
        return self.reason if self.status == INVALID else STATUS_LABELS[self.status]


@dataclass
class Preview:
    """What an import of the file would do, row by row, before anything is written."""

    encoding: str
    delimiter: str
    columns: list[str]
    ignored: list[str]
    rows: list[Row]
    new_groups: list[str] = field(default_factory=list)

    @property
    def counts(self) -> Counter:
        return Counter(row.status for row in self.rows)

    @property
    def importable(self) -> int:
        counts = self.counts
        return counts[NEW] + counts[LINK]

    @property
    def format(self) -> str:
        return f"{self.encoding}, values separated by {DELIMITER_NAMES[self.delimiter]}"

    def summary(self) -> str:
        """Return the one-line count of what would happen."""
        c = self.counts
        return (
            f"{plural(len(self.rows), 'row')}: {c[NEW]:,} new, "
            f"{c[LINK]:,} existing {'person' if c[LINK] == 1 else 'people'} to link, "
            f"{c[SKIP]:,} already in this account (skipped), {c[INVALID]:,} invalid."
        )


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
        if len(cells) != self.width:
            return self._ragged(line, cells)
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
        phone = None
        if self.phone_at is not None and cells[self.phone_at].strip():
            try:
                phone = people.normalise_phone(restore(cells[self.phone_at]))
            except ServiceError as error:
                return _invalid(Row(line, name, raw, groups), error.message)
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
        row = Row(line, name, raw, groups, phone, key)
        if not key.isascii():
            row.note = "contains non-ASCII letters; check it is not a look-alike of another address"
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


def _existing(actor, keys: list[str]) -> dict[str, tuple[bool, bool | None]]:
    """Return {email: (has a password, membership here deleted?)} for people already known."""
    stmt = (
        sa.select(User.email, User.password_hash.is_not(None), Membership.id,
                  Membership.deleted_at.is_not(None))
        .outerjoin(
            Membership,
            sa.and_(Membership.user_id == User.id, Membership.account_id == actor.account_id),
        )
        .where(_one_of(User.email, keys))
    )
    return {
        email: (bool(has_password), None if membership_id is None else bool(deleted))
        for email, has_password, membership_id, deleted in db.session.execute(stmt)
    }


def check_table(actor, table: Table) -> Preview:
    """Return every row of the table with its status: new, to link, skipped or invalid."""
    checker = _Checker(table.header, table.width)
    rows = [checker.check(line, cells) for line, cells in table.records]
    valid = [row for row in rows if row.status != INVALID]
    existing = _existing(actor, [row.key for row in valid])
    for row in valid:
        known = existing.get(row.key)
        if known is None:
            continue
        row.has_password, deleted = known
        if deleted is None:
            row.status = LINK
        else:
            row.status = SKIP
            if deleted:
                row.note = "deleted from this account; restore them from Deleted users instead"
    columns = [c for c, _ in sorted(table.header.items(), key=lambda item: item[1])]
    return Preview(table.encoding, table.delimiter, columns, table.ignored, rows)


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


def preview_csv(actor, data: bytes) -> Preview:
    """Return what importing the file would do, row by row; write nothing."""
    with no_cyclic_gc():
        table = read_table(data, current_app.config["IMPORT_MAX_ROWS"])
        preview = check_table(actor, table)
        preview.new_groups = groups_to_create(
            actor, [row for row in preview.rows if row.status in (NEW, LINK)]
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

