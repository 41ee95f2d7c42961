"""CSV export: an account's users (all, or a selection) as a streamed, formula-safe file."""
import codecs
import csv
import io
import operator
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

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
CHUNK_BYTES = 256 * 1024  # what one chunk of a PostgreSQL download gathers before it is sent


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


def pg_neutralise(value: sa.ColumnElement) -> sa.ColumnElement:
    """``csv_cells.neutralise`` in SQL (PostgreSQL's regular expressions)."""
    dangerous = sa.or_(value.regexp_match(sa.literal(PG_LEAD)),
                       value.regexp_match(sa.literal(PG_INNER)))
    return sa.case((dangerous, sa.literal("'") + value), else_=value)


def _cells_query(ids: sa.Select, postgresql: bool) -> sa.Select:
    """SELECT the file's cells of each user, in file order, as they are written (but for
    formula neutralisation, which PostgreSQL does in SQL and SQLite leaves to Python)."""
    state = sa.case(
        (Membership.deleted_at.is_not(None), "deleted"),
        else_=sa.func.replace(Membership.invite_state, "_", " "),
    )
    phone = people.shown_phone()
    # SQLite aggregates each person's groups fastest through the membership's index;
    # PostgreSQL once for all of them, joined beside the rows.
    if postgresql:
        groups = (
            sa.select(GroupMember.membership_id.label("membership_id"),
                      sa.func.aggregate_strings(Group.name, "; ").label("names"))
            .join(Group, Group.id == GroupMember.group_id)
            .where(GroupMember.membership_id.in_(ids))
            .group_by(GroupMember.membership_id)
            .subquery()
        )
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
    query = (
        sa.select(name, email,
                  # Stored phones are E.164, so they all start with "+".
                  sa.case((phone.is_not(None), sa.literal("'") + phone), else_=""),
                  names, state,
                  sa.func.coalesce(_minutes(Membership.sort_last_seen), ""),
                  _minutes(Membership.created_at))
        .join(User, User.id == Membership.user_id)
        .where(Membership.id.in_(ids))
        .order_by(Membership.id)
    )
    if groups is not None:
        query = query.outerjoin(groups, groups.c.membership_id == Membership.id)
    return query


# A line ends with its Created cell: a quoted "YYYY-MM-DD HH:MM" (see _pg_chunks).
_LINE_END = re.compile(rb'(?<=[0-9]")\n')
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


def _pg_chunks(conn: sa.Connection, query: sa.Select) -> Iterator[bytes]:
    """The file's lines as PostgreSQL writes them (COPY ... TO STDOUT, psycopg's cursor.copy).

    COPY ends lines with LF, where csv writes CRLF. A line ends with its Created cell, a quoted
    "YYYY-MM-DD HH:MM", so its LF follows a digit and a quote; inside a value a quote is
    doubled, so a line break there (which no form stores, but old data may hold) never does.
    """
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    sql = f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *)"
    # The groups of 100,000 people are aggregated in memory, not in batches on disk; the
    # setting ends with this read's transaction.
    conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    with conn.connection.driver_connection.cursor() as cursor:
        with cursor.copy(sql, compiled.params) as copy:
            pending = []
            size = 0
            for data in copy:
                pending.append(data)
                size += len(data)
                if size >= CHUNK_BYTES:
                    yield _LINE_END.sub(b"\r\n", b"".join(pending))
                    pending, size = [], 0
            if pending:
                yield _LINE_END.sub(b"\r\n", b"".join(pending))


def _chunks(ids: sa.Select) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    # The BOM makes Excel read UTF-8; the import strips it.
    yield codecs.BOM_UTF8 + buffer.getvalue().encode()
    conn = db.session.connection()
    postgresql = conn.dialect.name == "postgresql"
    query = _cells_query(ids, postgresql)
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
    else:
        ids = users.selected_ids(actor, selection)
        include_deleted = False
    count = db.session.scalar(sa.select(sa.func.count()).select_from(ids.subquery()))
    audit.record(actor, "users.exported", count=count, include_deleted=include_deleted,
                 selection="all" if selection is None else "selected")
    db.session.commit()
    filename = filename_for(actor.account.name, date.today())
    return Export(filename, count, _chunks(ids))
