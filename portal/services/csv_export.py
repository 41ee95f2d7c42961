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
ROWS_PER_CHUNK = 2000  # lines of a PostgreSQL download passed on as one piece


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


# csv_cells.dangerous as PostgreSQL regular expressions, so that the server writes the file's
# cells as they are: Python's \s spelt out (PostgreSQL's depends on the locale), and the leading
# quotes that ``dangerous`` strips one by one taken at once (tests/services/test_csv_export.py
# holds the two to the same answers).
_SPACE = ("[\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a"
          "\\u2028\\u2029\\u202f\\u205f\\u3000]")
PG_LEAD = f"^'*([\\u0009\\u000a\\u000d]|{_SPACE}*[=+@|%-])"
PG_INNER = f"[,;\"\\u0009]{_SPACE}*[=+@|%-]"


# Both in one expression: one match per cell instead of two (PostgreSQL converts the whole
# value for each match; at 100,000 rows the matches were a quarter of the export's work).
PG_DANGEROUS = f"{PG_LEAD}|{PG_INNER}"


def pg_formula_risk(value: sa.ColumnElement) -> sa.ColumnElement:
    """True for every value PG_DANGEROUS matches (and some more), in cheap comparisons: a
    match of PG_LEAD starts with a byte below "A" or from "|" on (so with "|" or any
    non-ASCII character, the spaces among them), one of PG_INNER holds , ; " or TAB. A
    regular expression converts the whole value before it matches: three a row were a third
    of the server's work."""
    first = value.collate("C")  # compared byte by byte: "" < "A"
    return sa.or_(first < "A", first >= "|",
                  *(sa.func.strpos(value, mark) > 0 for mark in ',;"\t'))


def pg_neutralise(value: sa.ColumnElement, risk: sa.ColumnElement | None = None
                  ) -> sa.ColumnElement:
    """``csv_cells.neutralise`` in SQL (PostgreSQL's regular expressions), the expression
    matched only where ``risk`` (``pg_formula_risk`` by default) says it could match."""
    if risk is None:
        risk = pg_formula_risk(value)
    dangerous = value.regexp_match(sa.literal(PG_DANGEROUS))
    # Nested, since CASE is what PostgreSQL evaluates in the order written.
    return sa.case((risk, sa.case((dangerous, sa.literal("'") + value), else_=value)),
                   else_=value)


def _cells_query(ids: sa.Select, postgresql: bool, actor, whole_account: bool) -> sa.Select:
    """SELECT the file's cells of each user, in file order, as they are written (but for
    formula neutralisation, which PostgreSQL does in SQL and SQLite leaves to Python).

    With ``whole_account`` ``ids`` is the whole account's (scope.in_account of memberships,
    nothing joined): its rows are then read by its own WHERE, and the groups by the
    account's, instead of through ``IN (ids)``, which made PostgreSQL read memberships three
    times and hash two of them against the third.
    """
    state = sa.case(
        (Membership.deleted_at.is_not(None), "deleted"),
        else_=sa.func.replace(Membership.invite_state, "_", " "),
    )
    phone = people.shown_phone()
    name, email = people.shown_name(), User.email
    # SQLite aggregates each person's groups fastest through the membership's index;
    # PostgreSQL once for all of them, joined beside the rows: the pairs sorted by membership
    # and group name, aggregated in that order (a GroupAggregate, whose state lives for one
    # person at a time: hashed, each person's string_agg buffer lived to the end and the
    # aggregate spilled to disk), so a person's groups come in name order.
    if postgresql:
        # Each of the account's groups once (OFFSET 0 keeps PostgreSQL from evaluating the
        # risk per pair): whether its name could make the Groups cell a formula, at its
        # start or after the "; " before it.
        named = scope.in_account(sa.select(
            Group.id, Group.name, Group.name_key,
            sa.or_(Group.name.regexp_match(sa.literal(PG_DANGEROUS)),
                   Group.name.regexp_match(sa.literal(f"^{_SPACE}*[=+@|%-]"))).label("risk"),
        ), Group, actor).offset(0).subquery()
        pairs = (sa.select(GroupMember.membership_id, named.c.name, named.c.risk)
                 .join(named, named.c.id == GroupMember.group_id))
        if not whole_account:
            pairs = pairs.where(GroupMember.membership_id.in_(ids))
        pairs = pairs.order_by(GroupMember.membership_id, named.c.name_key).subquery()
        groups = (sa.select(pairs.c.membership_id,
                            sa.func.aggregate_strings(pairs.c.name, "; ").label("names"),
                            sa.func.bool_or(pairs.c.risk).label("risk"))
                  .group_by(pairs.c.membership_id).subquery())
        name, email = pg_neutralise(name), pg_neutralise(email)
        names = sa.func.coalesce(pg_neutralise(groups.c.names, groups.c.risk), "")
    else:
        groups = None
        names = sa.func.coalesce(
            sa.select(sa.func.aggregate_strings(Group.name, "; "))
            .join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.membership_id == Membership.id)
            .scalar_subquery(), "")
    query = (
        sa.select(name, email,
                  # Stored phones are E.164, so they all start with "+".
                  sa.case((phone.is_not(None), sa.literal("'") + phone), else_=""),
                  names, state,
                  sa.func.coalesce(_minutes(Membership.sort_last_seen), ""),
                  _minutes(Membership.created_at))
        .join(User, User.id == Membership.user_id)
        .where(ids.whereclause if whole_account else Membership.id.in_(ids))
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


def _pg_lines(query: sa.Select) -> sa.Select:
    """The file's lines as PostgreSQL writes them: every cell quoted, its quotes doubled, as
    csv.writer's QUOTE_ALL writes them, each line ended by CRLF."""
    cells = query.subquery()
    escaped = [sa.func.replace(sa.func.coalesce(cell, ""), '"', '""') for cell in cells.c]
    line = sa.literal('"') + escaped[0]
    for cell in escaped[1:]:
        line = line + '","' + cell
    return sa.select(line + '"\r\n')


def _pg_chunks(conn: sa.Connection, query: sa.Select) -> Iterator[bytes]:
    """The file's lines, ROWS_PER_CHUNK to a piece, streamed as the server writes them.

    The rows come in chunks of ROWS_PER_CHUNK (psycopg's stream, libpq's chunked rows): no
    cursor's FETCH after FETCH, so the server writes while the client passes pieces on. COPY
    sent the same cells a message a line, and psycopg's read of each message cost the client
    as much CPU as the server saved by quoting them itself.
    """
    # The groups' pairs are sorted in memory, not in batches on disk; no parallel plan
    # (its workers each aggregated every group again); the groups aggregated from their
    # sorted pairs (see _cells_query). The settings end with this read's transaction.
    conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    conn.exec_driver_sql("SET LOCAL enable_hashagg = off")
    compiled = _pg_lines(query).compile(dialect=conn.dialect,
                                        compile_kwargs={"render_postcompile": True})
    import psycopg  # only on PostgreSQL

    # Chunked rows need libpq 17 (psycopg[binary] brings its own); row by row before.
    size = ROWS_PER_CHUNK if psycopg.pq.version() >= 170000 else 1
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor:
        lines = []
        for (line,) in cursor.stream(str(compiled), compiled.params, size=size):
            lines.append(line)
            if len(lines) == ROWS_PER_CHUNK:
                yield "".join(lines).encode()
                lines = []
        if lines:
            yield "".join(lines).encode()


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
        whole_account = True
    else:
        ids = users.selected_ids(actor, selection)
        include_deleted = False
        whole_account = False
    count = db.session.scalar(sa.select(sa.func.count()).select_from(ids.subquery()))
    audit.record(actor, "users.exported", count=count, include_deleted=include_deleted,
                 selection="all" if selection is None else "selected")
    db.session.commit()
    filename = filename_for(actor.account.name, date.today())
    # Built now, while the actor is in the session (the file is written after the request).
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    query = _cells_query(ids, postgresql, actor, whole_account)
    return Export(filename, count, _chunks(query, postgresql))
