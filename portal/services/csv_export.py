"""CSV export: an account's users (all, or a selection) as a streamed, formula-safe file."""
import codecs
import csv
import io
import itertools
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
from portal.services import people
from portal.services import scope
from portal.services import users
from portal.services.csv_cells import ROW_CHECK
from portal.services.csv_cells import neutralise

# The import reads Full Name, Email, Phone and Groups back; it ignores the other columns.
COLUMNS = ("Full Name", "Email", "Phone", "Groups", "State", "Last seen", "Created")
BATCH = 2000


@dataclass
class Export:
    """A download: its server-built file name, its row count and its bytes, made lazily."""

    filename: str
    count: int
    chunks: Iterator[bytes]


def filename_for(account_name: str, day: date) -> str:
    """Return users-<account>-<date>.csv with the account name reduced to safe ASCII."""
    ascii_name = unicodedata.normalize("NFKD", account_name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "account"
    return f"users-{slug[:60]}-{day.isoformat()}.csv"


def _minutes(column) -> sa.ColumnElement:
    # "YYYY-MM-DD HH:MM" in SQL: both databases print timestamps in ISO order.
    return sa.func.substr(sa.cast(column, sa.String), 1, 16)


def _rows_query(ids: sa.Select) -> sa.Select:
    state = sa.case(
        (Membership.deleted_at.is_not(None), "deleted"),
        else_=sa.func.replace(Membership.invite_state, "_", " "),
    )
    return (
        sa.select(Membership.id, people.shown_name(), User.email, people.shown_phone(), state,
                  _minutes(Membership.sort_last_seen), _minutes(Membership.created_at))
        .join(User, User.id == Membership.user_id)
        .where(Membership.id.in_(ids))
        .order_by(Membership.id)
    )


def _groups_query(ids: sa.Select) -> sa.Select:
    # Aggregated once, beside the rows (same order) rather than per row: a third cheaper.
    return (
        sa.select(GroupMember.membership_id, sa.func.aggregate_strings(Group.name, "; "))
        .join(Group, Group.id == GroupMember.group_id)
        .where(GroupMember.membership_id.in_(ids))
        .group_by(GroupMember.membership_id)
        .order_by(GroupMember.membership_id)
    )


def _chunks(ids: sa.Select) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    # The BOM makes Excel read UTF-8; the import strips it.
    yield codecs.BOM_UTF8 + buffer.getvalue().encode()
    conn = db.session.connection()
    rows = conn.execute(_rows_query(ids).execution_options(yield_per=BATCH))
    groups = conn.execute(_groups_query(ids).execution_options(yield_per=BATCH))
    try:
        group_rows = itertools.chain.from_iterable(groups.partitions())
        group_of, names = next(group_rows, (None, ""))
        for partition in rows.partitions():
            out = []
            for membership_id, name, email, phone, state, seen, created in partition:
                while group_of is not None and group_of < membership_id:
                    group_of, names = next(group_rows, (None, ""))
                cell = names if group_of == membership_id else ""
                if ROW_CHECK.search(f"\x1f{name}\x1f{email}\x1f{cell}"):
                    name, email, cell = neutralise(name), neutralise(email), neutralise(cell)
                # Stored phones are E.164, so they all start with "+".
                out.append((name, email, "'" + phone if phone else "", cell, state,
                            seen or "", created))
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(out)
            yield buffer.getvalue().encode()
    finally:
        # Also when the download is cut off: close the (server-side) cursors, end the read.
        rows.close()
        groups.close()
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
