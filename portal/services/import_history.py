"""Import history and Undo import.

Every import (page or CLI) is recorded: who, when, which file, its counts and its report. The
memberships, group memberships and groups it wrote carry its id (``import_id``). For
``UNDO_DAYS`` days an admin can undo it: the memberships it added go through the deletion
service (blocked cases as for any delete; restorable for the retention period), the group
memberships it added are removed, the groups it created and left empty are deleted, and the
people it updated get their name and phone back.
"""
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import Step
from portal.models import User
from portal.models import UserImport
from portal.models import utcnow
from portal.services import audit
from portal.services import deletion
from portal.services import scope
from portal.services.errors import Conflict
from portal.services.errors import ServiceError

UNDO_DAYS = 30


def begin(actor, *, source: str, filename: str) -> UserImport:
    """Add the import's history line (flushed: its id marks the rows it writes); no commit."""
    user = actor.user
    record = UserImport(
        account_id=actor.account_id,
        membership_id=actor.id,
        actor_name=user.name if user is not None else "operator (command line)",
        source=source,
        filename=(filename or "upload.csv")[:200],
        created_at=utcnow(),
        result={},
        previous=[],
    )
    db.session.add(record)
    db.session.flush()
    return record


def finish(record: UserImport, result: dict, report_csv: bytes, previous: list[dict]) -> None:
    """Store what the import wrote on its history line; no commit."""
    record.result = result
    record.report_csv = report_csv
    record.previous = previous


@dataclass
class ImportLine:
    """One import of the history, as the list shows it."""

    id: int
    created_at: datetime
    actor_name: str
    source: str
    filename: str
    summary: str
    undone_at: datetime | None
    can_undo: bool


def _window() -> datetime:
    return utcnow() - timedelta(days=UNDO_DAYS)


def list_imports(actor, limit: int = 200) -> list[ImportLine]:
    """Return the account's imports, newest first."""
    records = db.session.scalars(
        scope.in_account(sa.select(UserImport), UserImport, actor)
        .order_by(UserImport.created_at.desc(), UserImport.id.desc())
        .limit(limit)
    )
    since = _window()
    return [
        ImportLine(r.id, r.created_at, r.actor_name, r.source, r.filename,
                   (r.result or {}).get("summary", ""), r.undone_at,
                   r.undone_at is None and r.created_at >= since)
        for r in records
    ]


def get_import(actor, import_id) -> UserImport:
    """Return one import of the actor's account, or NotFound."""
    return scope.get_in_account(UserImport, import_id, actor)


def report(actor, import_id) -> tuple[str, bytes]:
    """Return (file name, CSV) of an import's report."""
    record = get_import(actor, import_id)
    return f"import-{record.id}-report.csv", record.report_csv or b""


@dataclass
class UndoPlan:
    """What Undo import would do, for its confirmation."""

    record: UserImport
    remove: int  # memberships it added that the deletion may remove
    blocked: list[deletion.Blocked]
    group_memberships: int
    groups: list[str]  # groups it created that would be left empty, deleted
    restore: int  # people whose name and phone are put back
    sample: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"remove {self.remove:,} {'person' if self.remove == 1 else 'people'} "
                 "it added (restorable from Deleted users)"]
        if self.group_memberships:
            parts.append(f"take {self.group_memberships:,} group membership"
                         f"{'' if self.group_memberships == 1 else 's'} back")
        if self.groups:
            parts.append(f"delete the group{'' if len(self.groups) == 1 else 's'} it created: "
                         f"{', '.join(self.groups)}")
        if self.restore:
            parts.append(f"put back the name and phone of {self.restore:,} updated "
                         f"{'person' if self.restore == 1 else 'people'}")
        return "Undo import will " + "; ".join(parts) + "."


def _added(actor, record: UserImport) -> sa.Select:
    return sa.select(Membership.id).where(
        Membership.account_id == actor.account_id,
        Membership.import_id == record.id,
        Membership.deleted_at.is_(None),
    )


def _undoable(actor, import_id) -> UserImport:
    record = get_import(actor, import_id)
    if record.undone_at is not None:
        raise Conflict("This import was already undone.")
    if record.created_at < _window():
        raise ServiceError(f"Imports can be undone for {UNDO_DAYS} days; this one is older.",
                           status=410)
    return record


def _group_memberships(actor, record: UserImport, keep: list[int]) -> sa.Select:
    """The group memberships the import added, but not those of people who stay."""
    stmt = (
        sa.select(GroupMember.group_id, GroupMember.membership_id)
        .join(Group, Group.id == GroupMember.group_id)
        .where(Group.account_id == actor.account_id, GroupMember.import_id == record.id)
    )
    if keep:
        stmt = stmt.where(GroupMember.membership_id.not_in(keep))
    return stmt


def _empty_groups(actor, record: UserImport) -> sa.Select:
    """The groups the import created with no live member and no step: deletable."""
    return sa.select(Group.id, Group.name).where(
        Group.account_id == actor.account_id,
        Group.import_id == record.id,
        ~sa.exists().where(GroupMember.group_id == Group.id,
                           Membership.id == GroupMember.membership_id,
                           Membership.deleted_at.is_(None)),
        ~sa.exists().where(Step.group_id == Group.id),
    )


def plan_undo(actor, import_id) -> UndoPlan:
    """Tell what undoing the import would remove and put back; write nothing."""
    record = _undoable(actor, import_id)
    plan = deletion.plan_for(actor, _added(actor, record))
    keep = [b.membership_id for b in plan.blocked]
    memberships = db.session.scalar(
        sa.select(sa.func.count()).select_from(_group_memberships(actor, record, keep)
                                               .subquery()))
    leaving = set(plan.deletable)
    # The groups it created that no one would be left in (and that no step uses).
    members: dict[tuple[int, str], bool] = {}
    for gid, name, membership_id, added_here, live in db.session.execute(
        sa.select(Group.id, Group.name, GroupMember.membership_id,
                  GroupMember.import_id == record.id, Membership.deleted_at.is_(None))
        .outerjoin(GroupMember, GroupMember.group_id == Group.id)
        .outerjoin(Membership, Membership.id == GroupMember.membership_id)
        .where(Group.account_id == actor.account_id, Group.import_id == record.id,
               ~sa.exists().where(Step.group_id == Group.id))
    ):
        stays = bool(live) and membership_id not in leaving and (
            not added_here or membership_id in keep)
        members[(gid, name)] = members.get((gid, name), False) or stays
    groups = sorted(name for (_, name), stays in members.items() if not stays)
    db.session.rollback()
    return UndoPlan(record, len(plan.deletable), plan.blocked, memberships, groups,
                    len(record.previous or []), plan.sample)


@dataclass
class UndoReport:
    removed: int
    blocked: list[deletion.Blocked]
    group_memberships: int
    groups_deleted: list[str]
    restored: int

    def summary(self) -> str:
        text = (f"Import undone: {self.removed:,} removed, {self.group_memberships:,} group "
                f"memberships taken back, {len(self.groups_deleted):,} groups deleted, "
                f"{self.restored:,} updates put back.")
        if self.blocked:
            text += f" {len(self.blocked):,} left in place: " + "; ".join(
                f"{b.name}: {b.reason}" for b in self.blocked)
        return text


def undo_import(actor, import_id) -> UndoReport:
    """Undo an import within UNDO_DAYS, in one transaction (see the module's docstring)."""
    record = _undoable(actor, import_id)
    # First the people, with the import's group memberships still in place: the deletion's
    # only-member rule sees them, and whoever it protects keeps theirs.
    report = deletion.delete_within(actor, _added(actor, record))
    keep = [b.membership_id for b in report.blocked]
    pairs = _group_memberships(actor, record, keep).subquery()
    taken = db.session.execute(
        sa.delete(GroupMember).where(
            sa.tuple_(GroupMember.group_id, GroupMember.membership_id).in_(
                sa.select(pairs.c.group_id, pairs.c.membership_id))),
        execution_options={"synchronize_session": False},
    ).rowcount
    gone = db.session.execute(_empty_groups(actor, record).order_by(Group.name)).all()
    if gone:
        ids = [gid for gid, _ in gone]
        # Their remaining members are people this undo deleted (kept for restore).
        db.session.execute(sa.delete(GroupMember).where(GroupMember.group_id.in_(ids)),
                           execution_options={"synchronize_session": False})
        db.session.execute(sa.delete(Group).where(Group.id.in_(ids)),
                           execution_options={"synchronize_session": False})
    for before in record.previous or []:
        if "membership_id" in before:
            # What this account had typed for someone who has not accepted yet.
            db.session.execute(
                sa.update(Membership).where(Membership.id == before["membership_id"],
                                            Membership.invited_name.is_not(None))
                .values(invited_name=before["invited_name"],
                        invited_phone=before["invited_phone"],
                        sort_name=sa.func.lower(before["invited_name"])),
                execution_options={"synchronize_session": False},
            )
            continue
        db.session.execute(
            sa.update(User).where(User.id == before["user_id"])
            .values(name=before["name"], phone=before["phone"], version=User.version + 1),
            execution_options={"synchronize_session": False},
        )
    result = UndoReport(report.deleted, report.blocked, taken, [name for _, name in gone],
                        len(record.previous or []))
    record.undone_at = utcnow()
    record.undone_by_id = actor.user_id
    record.undo_result = {"summary": result.summary(), "removed": result.removed,
                          "blocked": len(result.blocked)}
    audit.record(actor, "users.import_undone", import_id=record.id, file=record.filename,
                 removed=result.removed, blocked=len(result.blocked),
                 group_memberships=taken, groups_deleted=result.groups_deleted,
                 restored=result.restored)
    db.session.commit()
    return result
