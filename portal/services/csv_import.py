"""CSV import: write the valid rows of a checked file set-wise, in one transaction.

The page (through ``import_jobs``) and ``flask users import`` call ``import_csv``. It reads
(csv_read) and checks (csv_check) the file again against the database as it is now, then writes
users, memberships, groups, group memberships, invitation links and their e-mails in bulk SQL
(a staging table and INSERT ... SELECT).
"""
import csv
import io
from collections import Counter
from collections.abc import Callable
from collections.abc import Collection
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from portal.extensions import db
from portal.extensions import sqlite_foreign_keys
from portal.models import Group
from portal.models import GroupMember
from portal.models import InviteState
from portal.models import Membership
from portal.models import Role
from portal.models import User
from portal.services import audit
from portal.services import bulk
from portal.services import import_history
from portal.services import invitations
from portal.services.csv_check import INVALID
from portal.services.csv_check import KEPT
from portal.services.csv_check import LOCAL
from portal.services.csv_check import NEW
from portal.services.csv_check import OWN
from portal.services.csv_check import SKIP
from portal.services.csv_check import UPDATE
from portal.services.csv_check import Preview
from portal.services.csv_check import Row
from portal.services.csv_check import check_table
from portal.services.csv_check import groups_to_create
from portal.services.csv_check import no_cyclic_gc
from portal.services.csv_check import plural
from portal.services.csv_cells import ROW_CHECK
from portal.services.csv_cells import neutralise
from portal.services.csv_read import read_table
from portal.services.errors import ServiceError

STAGE_BATCH = 5000


@dataclass
class ImportResult:
    """What an import wrote."""

    imported: int = 0
    updated: int = 0
    skipped: int = 0
    invalid: int = 0
    invited: int = 0
    warnings: int = 0
    groups_created: list[str] = field(default_factory=list)
    # Downloads kept with the job: the invalid rows (the file's columns and a Reason) ready to
    # fix and upload again, and the report (every row: line, e-mail, outcome, details).
    rejected_csv: bytes = b""
    report_csv: bytes = b""
    import_id: int | None = None  # its line in the import history (Undo import)

    def summary(self) -> str:
        text = f"{plural(self.imported, 'user')} imported, "
        if self.updated:
            text += f"{self.updated:,} updated, "
        text += f"{self.skipped:,} skipped"
        if self.warnings:
            text += f", {plural(self.warnings, 'row')} with a warning"
        if self.invalid:
            text += f", {plural(self.invalid, 'invalid row')} left out"
        return text + "."

    def as_dict(self) -> dict:
        return {
            "imported": self.imported,
            "updated": self.updated,
            "skipped": self.skipped,
            "warnings": self.warnings,
            "invalid": self.invalid,
            "invited": self.invited,
            "groups_created": self.groups_created,
            "summary": self.summary(),
        }



# Staging tables: the rows to import, loaded in bulk, then moved with INSERT ... SELECT.
STAGE = bulk.staging_table(
    "import_stage",
    sa.Column("email", sa.String(254)),
    sa.Column("name", sa.String(200)),
    sa.Column("phone", sa.String(32)),
    sa.Column("is_new", sa.Boolean),
)
STAGE_UPDATES = bulk.staging_table(
    "import_stage_updates",
    sa.Column("email", sa.String(254)),
    sa.Column("name", sa.String(200)),
    sa.Column("phone", sa.String(32)),
    sa.Column("target", sa.String(8)),
)
STAGE_GROUPS = bulk.staging_table(
    "import_stage_groups",
    sa.Column("email", sa.String(254)),
    sa.Column("group_key", sa.String(120)),
)


def _create_groups(actor, names: list[str], now, import_id: int) -> None:
    if names:
        db.session.execute(
            sa.insert(Group.__table__),
            [{"account_id": actor.account_id, "name": n, "name_key": n.lower(), "created_at": now,
              "import_id": import_id} for n in names],
        )


def _write(actor, rows: list[Row], invite: bool, progress, now, import_id: int) -> ImportResult:
    """Write the chosen rows set-wise, each marked with the import's id; the caller commits."""
    account = actor.account
    users = User.__table__
    memberships = Membership.__table__
    conn = db.session.connection()
    bulk.fresh(conn, STAGE, STAGE_GROUPS)
    pairs = []
    for start in range(0, len(rows), STAGE_BATCH):
        batch = rows[start:start + STAGE_BATCH]
        bulk.load(conn, STAGE, [(r.key, r.name, r.phone, True) for r in batch])
        pairs.extend((r.key, g.lower()) for r in batch for g in r.groups)
        if len(pairs) >= STAGE_BATCH:
            bulk.load(conn, STAGE_GROUPS, pairs)
            pairs = []
        progress("Checking the rows", 0.5 + 0.2 * (start + len(batch)) / len(rows))
    bulk.load(conn, STAGE_GROUPS, pairs)
    bulk.analyze(conn, STAGE, STAGE_GROUPS)
    created = groups_to_create(actor, rows)
    _create_groups(actor, created, now, import_id)
    progress("Creating users", 0.72)
    # Who is a person elsewhere already: added as anyone else, under the name typed in the file
    # and invited, joining only when they accept (DESIGN §1).
    conn.execute(sa.update(STAGE).where(sa.exists().where(users.c.email == STAGE.c.email))
                 .values(is_new=False))
    conn.execute(
        sa.insert(users).from_select(
            ["email", "name", "phone", "must_change_password", "failed_logins", "version",
             "created_at"],
            sa.select(STAGE.c.email, STAGE.c.name, STAGE.c.phone, sa.false(), sa.literal(0),
                      sa.literal(1), sa.literal(now, sa.DateTime)).where(STAGE.c.is_new),
        )
    )
    bulk.analyze_written(conn, len(rows), users)
    staged_users = STAGE.join(users, users.c.email == STAGE.c.email)
    progress("Adding them to the account", 0.78)
    conn.execute(
        sa.insert(memberships).from_select(
            ["account_id", "user_id", "role", "invite_state", "invited_by_id", "created_at",
             "import_id", "invited_name", "invited_phone", "sort_name", "sort_email",
             "invite_expires_at"],
            sa.select(
                sa.literal(account.id),
                users.c.id,
                sa.literal(Role.MEMBER.value),
                sa.literal(InviteState.INVITED.value),
                sa.literal(actor.user_id, sa.Integer),
                sa.literal(now, sa.DateTime),
                sa.literal(import_id, sa.Integer),
                sa.case((~STAGE.c.is_new, STAGE.c.name)),
                sa.case((~STAGE.c.is_new, STAGE.c.phone)),
                # The list's sort keys, as its trigger would copy them (portal/models/search.py)
                # but in this one statement instead of one UPDATE per row; someone known
                # elsewhere sorts by the name typed (the staged one: invited_name).
                sa.func.lower(STAGE.c.name),
                users.c.email,
                # When the invitation queued below runs out (written here, not updated after).
                sa.literal(now + timedelta(hours=account.invite_valid_hours) if invite else None,
                           sa.DateTime),
            ).select_from(staged_users),
        )
    )
    bulk.analyze_written(conn, len(rows), memberships)
    here = sa.and_(memberships.c.user_id == users.c.id, memberships.c.account_id == account.id)
    progress("Adding them to groups", 0.84)
    # Pairs are staged in file order, which is membership order: the table and its
    # membership index grow at their ends without a sort.
    _add_staged_group_members(conn, account.id, here, now, import_id)
    if invite:
        progress("Queueing invitations", 0.9)
        _queue_mails(actor, sa.select(memberships.c.id)
                     .select_from(staged_users.join(memberships, here)))
    for table in (STAGE_GROUPS, STAGE):
        table.drop(conn)
    counts = Counter(row.status for row in rows)
    return ImportResult(
        imported=counts[NEW],
        invited=len(rows) if invite else 0,
        groups_created=created,
    )



def _queue_mails(actor, memberships: sa.Select) -> None:
    """Queue each imported person's invitation (sealed for someone who has a password)."""
    invitations.queue_invitations(actor, actor.account, memberships, stamped=True)


def _add_staged_group_members(conn, account_id: int, here, now, import_id: int,
                              skip_present: bool = False) -> None:
    """INSERT ... SELECT the staged (email, group) pairs as group memberships of the account."""
    users = User.__table__
    memberships = Membership.__table__
    groups = Group.__table__
    group_members = GroupMember.__table__
    select = (
        sa.select(groups.c.id, memberships.c.id, sa.literal(now, sa.DateTime),
                  sa.literal(import_id, sa.Integer))
        .select_from(
            STAGE_GROUPS.join(users, users.c.email == STAGE_GROUPS.c.email)
            .join(memberships, here)
            .join(groups, sa.and_(groups.c.account_id == account_id,
                                  groups.c.name_key == STAGE_GROUPS.c.group_key))
        )
    )
    if skip_present:
        select = select.where(~sa.exists().where(
            group_members.c.group_id == groups.c.id,
            group_members.c.membership_id == memberships.c.id))
    conn.execute(sa.insert(group_members).from_select(
        ["group_id", "membership_id", "created_at", "import_id"], select))


def _update(actor, rows: list[Row], now, import_id: int) -> tuple[list[str], list[dict]]:
    """Apply Update existing users set-wise: names, phones, groups added; return groups made.

    Only what the preview listed as a change is written: a name that differs, a phone given
    (an empty or invalid phone cell leaves the phone as it is), groups the person is not in.
    Whose name and phone change is the row's ``target`` (csv_check.OWN, LOCAL or KEPT): the
    person's own, what this account typed for them, or neither.
    Returns the groups created and the values changed as they were before (for Undo import).
    """
    users = User.__table__
    memberships = Membership.__table__
    conn = db.session.connection()
    bulk.fresh(conn, STAGE_UPDATES, STAGE_GROUPS)
    bulk.load(conn, STAGE_UPDATES, [(row.key, row.name, row.phone, row.target) for row in rows
                                    if row.target != KEPT])
    bulk.load(conn, STAGE_GROUPS, [(row.key, g.lower()) for row in rows for g in row.add_groups])
    bulk.analyze(conn, STAGE_UPDATES, STAGE_GROUPS)
    created = groups_to_create(actor, [Row(0, "", "", row.add_groups) for row in rows])
    _create_groups(actor, created, now, import_id)
    staged = STAGE_UPDATES.c
    own = sa.and_(staged.email == users.c.email, staged.target == OWN,
                  sa.or_(users.c.name != staged.name,
                         sa.and_(staged.phone.is_not(None),
                                 users.c.phone.is_distinct_from(staged.phone))))
    previous = [
        {"user_id": user_id, "name": name, "phone": phone}
        for user_id, name, phone in conn.execute(
            sa.select(users.c.id, users.c.name, users.c.phone).where(own))
    ]
    conn.execute(
        sa.update(users).where(own)
        .values(name=staged.name, phone=sa.func.coalesce(staged.phone, users.c.phone),
                version=users.c.version + 1),
    )
    # Someone who has not accepted yet: what this account typed for them (DESIGN §1).
    local = sa.and_(staged.target == LOCAL, staged.email == users.c.email,
                    memberships.c.user_id == users.c.id,
                    memberships.c.account_id == actor.account_id,
                    memberships.c.invited_name.is_not(None),
                    sa.or_(memberships.c.invited_name != staged.name,
                           sa.and_(staged.phone.is_not(None),
                                   memberships.c.invited_phone.is_distinct_from(staged.phone))))
    previous += [
        {"membership_id": membership_id, "invited_name": name, "invited_phone": phone}
        for membership_id, name, phone in conn.execute(
            sa.select(memberships.c.id, memberships.c.invited_name, memberships.c.invited_phone)
            .where(local))
    ]
    conn.execute(
        sa.update(memberships).where(local)
        .values(invited_name=staged.name, sort_name=sa.func.lower(staged.name),
                invited_phone=sa.func.coalesce(staged.phone, memberships.c.invited_phone)),
    )
    here = sa.and_(memberships.c.user_id == users.c.id,
                   memberships.c.account_id == actor.account_id,
                   memberships.c.deleted_at.is_(None))
    _add_staged_group_members(conn, actor.account_id, here, now, import_id, skip_present=True)
    for table in (STAGE_GROUPS, STAGE_UPDATES):
        table.drop(conn)
    return created, previous


def _csv(rows: list[list[str]]) -> bytes:
    """Return formula-safe CSV bytes (UTF-8 with BOM, as spreadsheets open it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    # One search over every cell finds whether any needs neutralising (as the export does);
    # only then is each row looked at.
    if ROW_CHECK.search("\x1f" + "\x1f".join(map("\x1f".join, rows))):
        rows = [[neutralise(cell) for cell in row] if ROW_CHECK.search("\x1f" + "\x1f".join(row))
                else row for row in rows]
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode()


OUTCOMES = {NEW: "imported", UPDATE: "updated", SKIP: "skipped",
            INVALID: "rejected"}


def _reports(preview: Preview, rows: list[Row]) -> tuple[bytes, bytes]:
    """Return (rejected rows CSV, report CSV) of the rows an import took in."""
    rejected = [[*preview.labels, "Reason"]]
    rejected.extend([*preview.cells_of(row), row.reason] for row in rows
                    if row.status == INVALID)
    report = [["Line", "Email", "Outcome", "Details"]]
    for row in rows:
        details = row.reason if row.status == INVALID else row.note
        if row.changes:
            details = "; ".join(f"{what}: {old or '(empty)'} → {new}"
                                for what, old, new in row.changes)
        report.append([str(row.line), row.email, OUTCOMES[row.status], details])
    return _csv(rejected), _csv(report)


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
    read_as: str | None = None,
    update: bool = False,
    filename: str = "upload.csv",
) -> ImportResult:
    """Import the file's valid rows (all, or those on ``lines``) in one transaction.

    The file is checked again against the database as it is now, so rows added by someone
    else since the preview are skipped. ``on_success`` adds its own writes to the transaction.
    ``read_as`` and ``update`` are those of ``csv_check.preview_csv``.
    The import runs in a transaction of its own: what the caller read is read again.
    """
    wanted = None if lines is None else set(lines)
    if wanted is not None and not wanted:
        raise ServiceError("Select at least one row, or choose Import all.")
    progress("Reading the file", 0.05)
    db.session.rollback()
    token = sqlite_foreign_keys.set(False)
    try:
        with no_cyclic_gc():
            table = read_table(data, current_app.config["IMPORT_MAX_ROWS"], read_as)
            progress("Checking the rows", 0.3)
            preview = check_table(actor, table, update=update)
            in_scope = [row for row in preview.rows if wanted is None or row.line in wanted]
            record = import_history.begin(actor, source=source, filename=filename)
            now = record.created_at
            updates = [row for row in in_scope if row.status == UPDATE]
            created, previous = (_update(actor, updates, now, record.id) if updates
                                 else ([], []))
            chosen = [row for row in in_scope if row.status == NEW]
            result = (_write(actor, chosen, invite, progress, now, record.id) if chosen
                      else ImportResult())
            result.groups_created = sorted(created + result.groups_created, key=str.lower)
            result.rejected_csv, result.report_csv = _reports(preview, in_scope)
        counts = Counter(row.status for row in in_scope)
        result.updated = counts[UPDATE]
        result.skipped = counts[SKIP]
        result.invalid = counts[INVALID]
        result.warnings = sum(1 for row in in_scope if row.warnings and row.status != INVALID)
        import_history.finish(record, result.as_dict(), result.report_csv, previous)
        result.import_id = record.id
        if chosen:
            # One "added" event per person, as New User writes, set-wise (INSERT ... SELECT).
            audit.record_many(actor, "user.added", sa.select(Membership.user_id).where(
                Membership.account_id == actor.account_id, Membership.import_id == record.id,
            ), import_id=record.id, source=source)
        audit.record(actor, "users.imported", source=source, import_id=record.id,
                     **result.as_dict())
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
