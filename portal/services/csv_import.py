"""CSV import: read an upload (charset, dialect), preview every row, import set-wise.

The same two functions serve the page (through ``import_jobs``) and ``flask users import``:
``preview_csv`` writes nothing; ``import_csv`` checks the file again against the database as
it is now and writes users, memberships, groups, group memberships, invitation links and
their e-mails in one transaction, in bulk SQL (a staging table and INSERT ... SELECT).
"""
import codecs
import csv
import gc
import io
import json
import re
from collections import Counter
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta

import charset_normalizer
import filetype
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from flask import current_app

from portal.extensions import db
from portal.extensions import sqlite_foreign_keys
from portal.models import ActionToken
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import User
from portal.models import utcnow
from portal.services import audit
from portal.services import mail
from portal.services import people
from portal.services import scope
from portal.services import tokens
from portal.services.csv_cells import restore
from portal.services.errors import ServiceError
from portal.services.groups import clean_group_name
from portal.services.passwords import stamp_of

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
# Header spellings accepted for each column, compared lower-cased with spaces collapsed.
COLUMNS = {
    "name": ("full name", "name", "fullname", "full_name"),
    "email": ("email", "e-mail", "email address", "e-mail address", "mail"),
    "groups": ("groups", "group"),
    "phone": ("phone", "phone number", "telephone", "mobile"),
}
HEADER_NAMES = {alias: column for column, aliases in COLUMNS.items() for alias in aliases}
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "vertical bars"}
SPREADSHEETS = {"xlsx", "xls", "ods"}
# Share of control bytes in the first 8 KB above which a file is binary, not text; a stray
# NUL in one cell stays a row-level error (T23), a PNG or a UTF-16 file without BOM does not.
BINARY_SHARE = 0.1
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13)) + b"\x7f"
# RFC 5322 dot-atom: email-validator's own rule for a plain ASCII local part.
_ATEXT = r"a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~"
_PLAIN_LOCAL = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*\Z")
_CSV_ERRORS = {
    "unexpected end of data": "a quoted value is never closed (a \" has no partner)",
    "field larger than field limit": (
        "a value is longer than {limit:,} characters (or a quote before it is never closed)"
    ),
    "expected after": "a quote appears in the middle of a quoted value (write it as \"\")",
    "new-line character seen in unquoted field": "a line break appears inside a value",
}
STAGE_BATCH = 5000


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
            f"{_count(len(self.rows), 'row')}: {c[NEW]:,} new, "
            f"{c[LINK]:,} existing {'person' if c[LINK] == 1 else 'people'} to link, "
            f"{c[SKIP]:,} already in this account (skipped), {c[INVALID]:,} invalid."
        )


@dataclass
class ImportResult:
    """What an import wrote."""

    imported: int = 0
    linked: int = 0
    skipped: int = 0
    invalid: int = 0
    invited: int = 0
    groups_created: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{_count(self.imported, 'user')} imported, {self.linked:,} linked, "
            f"{self.skipped:,} skipped"
        )
        if self.invalid:
            text += f", {_count(self.invalid, 'invalid row')} left out"
        return text + "."

    def as_dict(self) -> dict:
        return {
            "imported": self.imported,
            "linked": self.linked,
            "skipped": self.skipped,
            "invalid": self.invalid,
            "invited": self.invited,
            "groups_created": self.groups_created,
            "summary": self.summary(),
        }


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


@dataclass
class _Table:
    encoding: str
    delimiter: str
    header: dict[str, int]
    width: int
    ignored: list[str]
    records: list[tuple[int, list[str]]]


def _file_error(message: str) -> ServiceError:
    return ServiceError(message, "file")


def decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding name) of an upload, or refuse a file that is not CSV text.

    A BOM decides (UTF-8, UTF-16); then strict UTF-8; then charset-normalizer, which is what
    reads Excel's Windows-1252 files. Binary and spreadsheet files are told apart by bytes.
    """
    if not data.strip():
        raise _file_error("The file is empty.")
    kind = filetype.guess(data)
    if kind is not None and kind.extension in SPREADSHEETS | {"zip"}:
        raise _file_error(
            "This is an Excel workbook, not a CSV file. In Excel choose File › Save As › "
            "CSV UTF-8 (Comma delimited), then upload that file."
        )
    if kind is not None:
        raise _file_error(f"This is a {kind.extension.upper()} file, not a CSV file.")
    for bom, codec, label in (
        (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
        (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
        (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec), label
            except UnicodeDecodeError:
                raise _file_error(
                    f"The file says it is {label} but is not; save it again as CSV UTF-8."
                ) from None
    head = data[:8192]
    if sum(head.count(b) for b in _CONTROL_BYTES) > BINARY_SHARE * len(head):
        raise _file_error("This is not a text file. Upload a CSV file saved as text.")
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    # Ties are common (cp1250, cp1252 and cp1257 all read "Müller" alike, not "Ærø"); Excel
    # on Western Windows saves cp1252, so it wins a tie. The preview shows the names read.
    for match in matches:
        if ("cp1252" in match.could_be_from_charset and best is not None
                and (match.chaos, -match.coherence) <= (best.chaos, -best.coherence)):
            best = match
            break
    if best is None:
        raise _file_error(
            "The characters of this file could not be read. Save it again as CSV UTF-8."
        )
    if "cp1252" in best.could_be_from_charset:
        return data.decode("cp1252"), "Windows-1252"
    return str(best), best.encoding


def _header_key(cell: str) -> str:
    return " ".join(restore(cell).replace("\ufeff", "").split()).lower()


def _split_header(first_line: str, delimiter: str) -> list[str]:
    return next(csv.reader([first_line], delimiter=delimiter), [])


def _choose_delimiter(text: str) -> tuple[str, int]:
    """Return the delimiter and how many lines precede the header.

    Decided on the header line: the delimiter that splits it into the most known column
    names wins (csv.Sniffer guesses from the data, and names like "Müller, Ana" fool it).
    Excel's "sep=;" first line is honoured.
    """
    first, _, rest = text.partition("\n")
    first = first.rstrip("\r")
    if first.lower().startswith("sep=") and len(first) == 5 and first[4] in DELIMITERS:
        return first[4], 1
    best, best_score = ",", (-1, -1)
    for delimiter in DELIMITERS:
        cells = _split_header(first, delimiter)
        known = sum(1 for c in cells if _header_key(c) in HEADER_NAMES)
        if (known, len(cells)) > best_score:
            best, best_score = delimiter, (known, len(cells))
    return best, 0


def _csv_error(exc: csv.Error, line: int) -> ServiceError:
    text = str(exc)
    for needle, message in _CSV_ERRORS.items():
        if needle in text:
            text = message.format(limit=csv.field_size_limit())
            break
    return _file_error(f"Line {line}: {text}. Nothing was imported; fix the file and try again.")


def read_table(data: bytes, max_rows: int) -> _Table:
    """Decode and parse the file strictly; raise ServiceError for problems of the whole file."""
    text, encoding = decode(data)
    delimiter, skip = _choose_delimiter(text)
    # newline="" keeps quoted line breaks inside values; CR, LF and CRLF all end a line.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[tuple[int, list[str]]] = []
    header_cells: list[str] | None = None
    header_line = 0
    last = 0  # the line the previous record ended on; a record starts on the next one
    try:
        for cells in reader:
            start = last + 1
            last = reader.line_num
            if (not cells or not cells[0] or cells[0].isspace()) and not "".join(cells).strip():
                continue  # a blank line
            if header_cells is None:
                if start > skip:
                    header_cells, header_line = cells, start
                continue
            if len(records) == max_rows:
                raise _file_error(
                    f"The file has more than {max_rows:,} rows, the most one import takes. "
                    "Split it into smaller files."
                )
            records.append((start, cells))
    except csv.Error as exc:
        raise _csv_error(exc, last + 1) from None
    if header_cells is None:
        raise _file_error("The file has no rows.")
    header: dict[str, int] = {}
    ignored: list[str] = []
    for index, cell in enumerate(header_cells):
        column = HEADER_NAMES.get(_header_key(cell))
        if column is None:
            if cell.strip():
                ignored.append(cell.strip())
            continue
        if column in header:
            raise _file_error(
                f"Line {header_line}: the column {cell.strip()!r} appears twice "
                f"(columns {header[column] + 1} and {index + 1})."
            )
        header[column] = index
    missing = [label for column, label in (("name", "Full Name"), ("email", "Email"))
               if column not in header]
    if missing:
        raise _file_error(
            f"The first line must name the columns; {' and '.join(missing)} not found. "
            "Expected Full Name, Email and optionally Groups (any order, any case)."
        )
    if not records:
        raise _file_error("The file has a header line but no rows.")
    return _Table(encoding, delimiter, header, len(header_cells), ignored, records)


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


def _analyse(actor, table: _Table) -> Preview:
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
def _no_cyclic_gc() -> Iterator[None]:
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
    with _no_cyclic_gc():
        table = read_table(data, current_app.config["IMPORT_MAX_ROWS"])
        preview = _analyse(actor, table)
        preview.new_groups = _groups_to_create(
            actor, [row for row in preview.rows if row.status in (NEW, LINK)]
        )
    db.session.rollback()
    return preview


# Staging tables: the rows to import, loaded in bulk, then moved with INSERT ... SELECT.
_stage_metadata = sa.MetaData()
STAGE = sa.Table(
    "import_stage",
    _stage_metadata,
    sa.Column("email", sa.String(254)),
    sa.Column("name", sa.String(200)),
    sa.Column("phone", sa.String(32)),
    sa.Column("is_new", sa.Boolean),
    sa.Column("mail_kind", sa.String(32)),
    sa.Column("token_hash", sa.String(64)),
    sa.Column("context", sa.Text),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
STAGE_GROUPS = sa.Table(
    "import_stage_groups",
    _stage_metadata,
    sa.Column("email", sa.String(254)),
    sa.Column("group_key", sa.String(120)),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


class _Mails:
    """The invitation or added-to-account e-mail of each imported row, as stored context.

    Rendering two templates per row would cost more than the rest of the import, and storing
    100,000 rendered bodies more still; the outbox renders them when it sends (mail.bodies).
    """

    def __init__(self, actor, invite: bool):
        account = actor.account
        self.invite = invite
        self.invite_subject = f"You are invited to {account.name}"
        self.added_subject = f"You were added to {account.name}"
        inviter = actor.user.name if actor.user is not None else None
        shared = {"inviter": inviter, "valid_hours": account.invite_valid_hours}
        self.invite_tail = ", " + json.dumps(shared)[1:]
        self.invite_url = json.dumps(mail.link("/invite/"))[:-1]
        self.login_url = mail.link("/login?login_hint=")

    def stage_rows(self, rows: list[Row]) -> list[tuple]:
        """Return the STAGE tuples of these rows, with a fresh invitation link each."""
        pairs = tokens.new_pairs(len(rows)) if self.invite else []
        staged = []
        for index, row in enumerate(rows):
            kind = token_hash = context = None
            if self.invite and row.has_password:
                kind = "added_to_account"
                context = json.dumps({"name": row.name, "url": self.login_url + row.key})
            elif self.invite:
                raw, token_hash = pairs[index]
                kind = "invite"
                context = (
                    f'{{"name": {json.dumps(row.name)}, "url": {self.invite_url}{raw}"'
                    f"{self.invite_tail}"
                )
            staged.append(
                (row.key, row.name, row.phone, row.status == NEW, kind, token_hash, context)
            )
        return staged

    def subject(self, kind: sa.ColumnElement) -> sa.ColumnElement:
        return sa.case((kind == "invite", self.invite_subject), else_=self.added_subject)


def _load(conn: sa.Connection, table: sa.Table, rows: list[tuple]) -> None:
    """Insert tuples into a staging table through the driver's executemany.

    Core's executemany turns each dict into the driver's parameters in Python, which doubles
    the cost of loading 100,000 rows; staging columns need no type conversion.
    """
    if not rows:
        return
    compiled = table.insert().compile(dialect=conn.dialect)
    if not compiled.positional:
        names = [column.name for column in table.columns]
        rows = [dict(zip(names, row)) for row in rows]
    conn.exec_driver_sql(str(compiled), rows)


def _create_groups(actor, names: list[str], now) -> None:
    if names:
        db.session.execute(
            sa.insert(Group.__table__),
            [{"account_id": actor.account_id, "name": n, "name_key": n.lower(), "created_at": now}
             for n in names],
        )


def _write(actor, rows: list[Row], invite: bool, progress) -> ImportResult:
    """Write the chosen rows set-wise; the caller commits."""
    now = utcnow()
    account = actor.account
    users = User.__table__
    memberships = Membership.__table__
    conn = db.session.connection()
    for table in (STAGE, STAGE_GROUPS):
        table.drop(conn, checkfirst=True)
        table.create(conn)
    mails = _Mails(actor, invite)
    pairs = []
    for start in range(0, len(rows), STAGE_BATCH):
        batch = rows[start:start + STAGE_BATCH]
        _load(conn, STAGE, mails.stage_rows(batch))
        pairs.extend((r.key, g.lower()) for r in batch for g in r.groups)
        if len(pairs) >= STAGE_BATCH:
            _load(conn, STAGE_GROUPS, pairs)
            pairs = []
        progress("Checking the rows", 0.5 + 0.2 * (start + len(batch)) / len(rows))
    _load(conn, STAGE_GROUPS, pairs)
    created = _groups_to_create(actor, rows)
    _create_groups(actor, created, now)
    progress("Creating users", 0.72)
    conn.execute(
        sa.insert(users).from_select(
            ["email", "name", "phone", "must_change_password", "failed_logins", "version",
             "created_at"],
            sa.select(STAGE.c.email, STAGE.c.name, STAGE.c.phone, sa.false(), sa.literal(0),
                      sa.literal(1), sa.literal(now, sa.DateTime)).where(STAGE.c.is_new),
        )
    )
    staged_users = STAGE.join(users, users.c.email == STAGE.c.email)
    progress("Adding them to the account", 0.78)
    conn.execute(
        sa.insert(memberships).from_select(
            ["account_id", "user_id", "role", "invite_state", "invited_by_id", "created_at",
             "sort_name", "sort_email", "sort_last_seen"],
            sa.select(
                sa.literal(account.id),
                users.c.id,
                sa.literal("member"),
                sa.case((users.c.password_hash.is_(None), "invited"), else_="active"),
                sa.literal(actor.user_id, sa.Integer),
                sa.literal(now, sa.DateTime),
                # The list's sort keys, as its trigger would copy them (portal/models/search.py)
                # but in this one statement instead of one UPDATE per row.
                sa.func.lower(users.c.name),
                users.c.email,
                users.c.last_seen_at,
            ).select_from(staged_users),
        )
    )
    here = sa.and_(memberships.c.user_id == users.c.id, memberships.c.account_id == account.id)
    groups = Group.__table__
    progress("Adding them to groups", 0.84)
    conn.execute(
        sa.insert(GroupMember.__table__).from_select(
            ["group_id", "membership_id", "created_at"],
            sa.select(groups.c.id, memberships.c.id, sa.literal(now, sa.DateTime))
            .select_from(
                STAGE_GROUPS.join(users, users.c.email == STAGE_GROUPS.c.email)
                .join(memberships, here)
                .join(groups, sa.and_(groups.c.account_id == account.id,
                                      groups.c.name_key == STAGE_GROUPS.c.group_key))
            )
            # Pairs are staged in file order, which is membership order: the table and its
            # membership index grow at their ends without a sort.

        )
    )
    if invite:
        progress("Queueing invitations", 0.9)
        _queue_mails(account, mails, staged_users, here, now)
    for table in (STAGE_GROUPS, STAGE):
        table.drop(conn)
    counts = Counter(row.status for row in rows)
    return ImportResult(
        imported=counts[NEW],
        linked=counts[LINK],
        invited=len(rows) if invite else 0,
        groups_created=created,
    )


def _groups_to_create(actor, rows: list[Row]) -> list[str]:
    """Return the group names these rows name that the account does not have yet."""
    present = set(db.session.scalars(scope.in_account(sa.select(Group.name_key), Group, actor)))
    wanted: dict[str, str] = {}
    for names in {row.groups for row in rows}:
        for name in names:
            if name.lower() not in present:
                wanted.setdefault(name.lower(), name)
    return sorted(wanted.values(), key=str.lower)


def _queue_mails(account, mails: _Mails, staged_users, here, now) -> None:
    users = User.__table__
    memberships = Membership.__table__
    conn = db.session.connection()
    # Earlier unused invitations of linked people to this account stop working (tokens.issue).
    tokens.supersede(
        sa.select(users.c.id).select_from(staged_users)
        .where(STAGE.c.token_hash.is_not(None), ~STAGE.c.is_new),
        "invite",
        account.id,
    )
    conn.execute(
        sa.insert(ActionToken.__table__).from_select(
            ["user_id", "account_id", "purpose", "token_hash", "password_stamp", "expires_at",
             "created_at"],
            sa.select(
                users.c.id,
                sa.literal(account.id),
                sa.literal("invite"),
                STAGE.c.token_hash,
                sa.literal(stamp_of(None)),
                sa.literal(now + timedelta(hours=account.invite_valid_hours), sa.DateTime),
                sa.literal(now, sa.DateTime),
            )
            .select_from(staged_users)
            .where(STAGE.c.token_hash.is_not(None))
            # In index order: inserting random digests in order is far cheaper for the B-tree.
            .order_by(STAGE.c.token_hash),
        )
    )
    context = STAGE.c.context
    if conn.dialect.name != "sqlite":
        # SQLite keeps JSON as text; elsewhere the text must become the JSON type.
        context = sa.cast(context, OutboxMessage.__table__.c.context.type)
    conn.execute(
        sa.insert(OutboxMessage.__table__).from_select(
            ["account_id", "user_id", "membership_id", "kind", "to_addr", "sender_name",
             "subject", "context", "state", "attempts", "next_attempt_at", "created_at"],
            sa.select(
                sa.literal(account.id),
                users.c.id,
                memberships.c.id,
                STAGE.c.mail_kind,
                users.c.email,
                sa.literal(account.sender_name or account.name),
                mails.subject(STAGE.c.mail_kind),
                context,
                sa.literal("pending"),
                sa.literal(0),
                sa.literal(now, sa.DateTime),
                sa.literal(now, sa.DateTime),
            )
            .select_from(staged_users.join(memberships, here))
            .where(STAGE.c.mail_kind.is_not(None)),
        )
    )


def _ignore(_phase: str, _fraction: float) -> None:
    return None


def import_csv(
    actor,
    data: bytes,
    *,
    lines: Collection[int] | None = None,
    invite: bool = True,
    source: str = "web",
    progress: Callable[[str, float], None] = _ignore,
    on_success: Callable[[ImportResult], None] | None = None,
) -> ImportResult:
    """Import the file's valid rows (all, or those on ``lines``) in one transaction.

    The file is checked again against the database as it is now, so rows added by someone
    else since the preview are skipped. ``on_success`` adds its own writes to the transaction.
    The import runs in a transaction of its own: what the caller read is read again.
    """
    wanted = None if lines is None else set(lines)
    if wanted is not None and not wanted:
        raise ServiceError("Select at least one row, or choose Import all.")
    progress("Reading the file", 0.05)
    db.session.rollback()
    token = sqlite_foreign_keys.set(False)
    try:
        with _no_cyclic_gc():
            table = read_table(data, current_app.config["IMPORT_MAX_ROWS"])
            progress("Checking the rows", 0.3)
            preview = _analyse(actor, table)
            in_scope = [row for row in preview.rows if wanted is None or row.line in wanted]
            chosen = [row for row in in_scope if row.status in (NEW, LINK)]
            result = _write(actor, chosen, invite, progress) if chosen else ImportResult()
        result.skipped = sum(1 for row in in_scope if row.status == SKIP)
        result.invalid = sum(1 for row in in_scope if row.status == INVALID)
        audit.record(actor, "users.imported", source=source, **result.as_dict())
        if on_success is not None:
            on_success(result)
        progress("Saving", 0.97)
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise ServiceError(
            "Some of these people were added by someone else at the same moment; "
            "nothing was imported. Preview the file again."
        ) from None
    finally:
        sqlite_foreign_keys.reset(token)
    return result
