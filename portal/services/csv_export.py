"""CSV export: an account's users (all, or a selection) as a streamed, formula-safe file."""
import codecs
import csv
import functools
import io
import operator
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by

from portal.extensions import db
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import User
from portal.services import audit
from portal.services import bulk
from portal.services import people
from portal.services import scope
from portal.services import users
from portal.services.csv_cells import ROW_CHECK
from portal.services.csv_cells import neutralise

# The import reads Full Name, Email, Phone and Groups back; it ignores the other columns.
COLUMNS = ("Full Name", "Email", "Phone", "Groups", "State", "Last seen", "Created")
BATCH = 2000
ROWS_PER_CHUNK = 2000  # lines of a PostgreSQL download the server joins into one piece


@dataclass
class Export:
    """A download: its server-built file name, its row count and its bytes, made lazily."""

    filename: str
    count: int | None  # None when counting would cost a pass of its own (the audit trail)
    chunks: Iterator[bytes]


def filename_for(account_name: str, day: date, kind: str = "users") -> str:
    """Return <kind>-<account>-<date>.csv with the account name reduced to safe ASCII."""
    ascii_name = unicodedata.normalize("NFKD", account_name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "account"
    return f"{kind}-{slug[:60]}-{day.isoformat()}.csv"


def _minutes(column) -> sa.ColumnElement:
    # "YYYY-MM-DD HH:MM" in SQL: both databases print timestamps in ISO order.
    return sa.func.substr(sa.cast(column, sa.String), 1, 16)


# csv_cells.dangerous as PostgreSQL regular expressions, so that COPY writes the file's cells
# as they are: Python's \s spelt out (PostgreSQL's depends on the locale), and the leading
# quotes that ``dangerous`` strips one by one taken at once (tests/services/test_csv_export.py
# holds the two to the same answers).
_SPACE = ("[\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a"
          "\\u2028\\u2029\\u202f\\u205f\\u3000]")
PG_LEAD = f"^'*([\\u0009\\u000a\\u000d]|{_SPACE}*[=+@|%-])"
PG_INNER = f"[,;\"\\u0009]{_SPACE}*[=+@|%-]"


# Both in one expression: one match per cell instead of two (PostgreSQL converts the whole
# value for each match; at 100,000 rows the matches were a quarter of the export's work).
PG_DANGEROUS = f"{PG_LEAD}|{PG_INNER}"


def pg_neutralise(value: sa.ColumnElement) -> sa.ColumnElement:
    """``csv_cells.neutralise`` in SQL (PostgreSQL's regular expressions)."""
    dangerous = value.regexp_match(sa.literal(PG_DANGEROUS))
    return sa.case((dangerous, sa.literal("'") + value), else_=value)


def _cells_query(ids: sa.Select, postgresql: bool, actor=None, numbered: bool = False
                 ) -> sa.Select:
    """SELECT the file's cells of each user, in file order, as they are written (but for
    formula neutralisation, which PostgreSQL does in SQL and SQLite leaves to Python).

    With ``actor`` ``ids`` is the whole account's (scope.in_account of memberships, nothing
    joined): its rows are then read by its own WHERE, and the groups by the account's, instead
    of through ``IN (ids)``, which made PostgreSQL read memberships three times and hash two of
    them against the third. ``numbered`` puts each row's membership id and chunk number
    (ROWS_PER_CHUNK rows to a chunk, in file order) in front.
    """
    state = sa.case(
        (Membership.deleted_at.is_not(None), "deleted"),
        else_=sa.func.replace(Membership.invite_state, "_", " "),
    )
    phone = people.shown_phone()
    # SQLite aggregates each person's groups fastest through the membership's index;
    # PostgreSQL once for all of them, joined beside the rows.
    if postgresql:
        groups = sa.select(GroupMember.membership_id.label("membership_id"),
                           sa.func.aggregate_strings(Group.name, "; ").label("names"))
        if actor is None:
            groups = (groups.join(Group, Group.id == GroupMember.group_id)
                      .where(GroupMember.membership_id.in_(ids)))
        else:
            groups = scope.in_account(groups, GroupMember, actor)
        groups = groups.group_by(GroupMember.membership_id).subquery()
        names = sa.func.coalesce(groups.c.names, "")
    else:
        groups = None
        names = sa.func.coalesce(
            sa.select(sa.func.aggregate_strings(Group.name, "; "))
            .join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.membership_id == Membership.id)
            .scalar_subquery(), "")
    name, email = people.shown_name(), User.email
    if postgresql:
        name, email, names = pg_neutralise(name), pg_neutralise(email), pg_neutralise(names)
    front = []
    if numbered:
        position = sa.func.row_number().over(order_by=Membership.id) - 1
        front = [Membership.id.label("membership_id"), (position // ROWS_PER_CHUNK).label("chunk")]
    query = (
        sa.select(*front, name, email,
                  # Stored phones are E.164, so they all start with "+".
                  sa.case((phone.is_not(None), sa.literal("'") + phone), else_=""),
                  names, state,
                  sa.func.coalesce(_minutes(Membership.sort_last_seen), ""),
                  _minutes(Membership.created_at))
        .join(User, User.id == Membership.user_id)
        .where(Membership.id.in_(ids) if actor is None else ids.whereclause)
        .order_by(Membership.id)
    )
    if groups is not None:
        query = query.outerjoin(groups, groups.c.membership_id == Membership.id)
    return query


_CHECKED = operator.itemgetter(0, 1, 3)  # Full Name, Email, Groups: the cells a person typed


def _neutralised(row: tuple) -> tuple:
    name, email, phone, names, *rest = row
    return (neutralise(name), neutralise(email), phone, neutralise(names), *rest)


def _sqlite_chunks(conn: sa.Connection, query: sa.Select, writer, buffer) -> Iterator[bytes]:
    """Rows straight from the driver's cursor (no SQLAlchemy row objects), a batch at a time.

    One search over a batch's typed cells, joined by \\x1f as csv_cells.ROW_CHECK expects,
    finds the rare batch with a cell to neutralise; only that one is rewritten row by row.
    """
    for batch in bulk.batches(conn, query, BATCH):
        if ROW_CHECK.search("\x1f" + "\x1f".join(map("\x1f".join, map(_CHECKED, batch)))):
            batch = [_neutralised(row)
                     if ROW_CHECK.search("\x1f" + "\x1f".join(_CHECKED(row))) else row
                     for row in batch]
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(batch)
        yield buffer.getvalue().encode()


def _pg_query(ids: sa.Select, actor) -> sa.Select:
    """The file's lines as PostgreSQL writes them, ROWS_PER_CHUNK lines to a row of text.

    Every cell quoted (its quotes doubled), lines ended by CRLF, as csv.writer writes them
    with QUOTE_ALL. COPY ... TO STDOUT sends one message a line, which cost the client as
    much CPU as the server's whole query (psycopg's read loop, then an LF-to-CRLF rewrite);
    a hundred rows of 2,000 lines each cost it next to nothing, and the server the same.
    """
    cells = _cells_query(ids, True, actor, numbered=True).order_by(None).subquery()
    quoted = [sa.literal('"') + sa.func.replace(sa.func.coalesce(cell, ""), '"', '""') + '"'
              for cell in list(cells.c)[2:]]
    line = functools.reduce(lambda left, right: left + "," + right, quoted) + "\r\n"
    return (
        sa.select(sa.func.string_agg(line, aggregate_order_by(sa.literal(""),
                                                              cells.c.membership_id)))
        .group_by(cells.c.chunk)
        .order_by(cells.c.chunk)
    )


def _pg_chunks(conn: sa.Connection, query: sa.Select) -> Iterator[bytes]:
    # The groups of 100,000 people are aggregated in memory, not in batches on disk, and once:
    # a parallel plan had each of its processes aggregate all of them again (the settings end
    # with this read's transaction).
    conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    for batch in bulk.batches(conn, query, 4):
        for (text,) in batch:
            yield text.encode()


def _chunks(query: sa.Select, postgresql: bool) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    # The BOM makes Excel read UTF-8; the import strips it.
    yield codecs.BOM_UTF8 + buffer.getvalue().encode()
    conn = db.session.connection()
    try:
        if postgresql:
            yield from _pg_chunks(conn, query)
        else:
            yield from _sqlite_chunks(conn, query, writer, buffer)
    finally:
        # Also when the download is cut off: end the read.
        db.session.rollback()


def export_users(
    actor, selection: users.Selection | None = None, *, include_deleted: bool = False
) -> Export:
    """Export the account's users, or a selection of them, and record that it happened.

    Soft-deleted users are included only when asked for, and only for "all users".
    """
    if selection is None:
        ids = scope.in_account(sa.select(Membership.id), Membership, actor)
        if not include_deleted:
            ids = ids.where(Membership.deleted_at.is_(None))
        whole_account = actor
    else:
        ids = users.selected_ids(actor, selection)
        include_deleted = False
        whole_account = None
    count = db.session.scalar(sa.select(sa.func.count()).select_from(ids.subquery()))
    audit.record(actor, "users.exported", count=count, include_deleted=include_deleted,
                 selection="all" if selection is None else "selected")
    db.session.commit()
    filename = filename_for(actor.account.name, date.today())
    # Built now, while the actor is in the session (the file is written after the request).
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    query = (_pg_query(ids, whole_account) if postgresql
             else _cells_query(ids, False, whole_account))
    return Export(filename, count, _chunks(query, postgresql))
