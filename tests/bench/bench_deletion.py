"""Benchmark deletion: delete 10,000 selected users; purge 100,000 memberships past retention.

    .venv/bin/python tests/bench/bench_deletion.py [--users 100000] [--delete 10000]
        [--purge 100000] [--database-url URL] [--profile]

Builds its own data set-wise in a fresh database (a temporary SQLite file unless
--database-url names an empty PostgreSQL database), measures through the real services and
the Flask test client, and prints a table and a JSON line. Budgets (DESIGN §5b, issue #7):
deleting 10,000 selected users < 2 s; purging 100,000 memberships past retention < 2 s.
"""
import argparse
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import ActionToken  # noqa: E402
from portal.models import AuditEvent  # noqa: E402
from portal.models import Base  # noqa: E402
from portal.models import Device  # noqa: E402
from portal.models import Group  # noqa: E402
from portal.models import GroupMember  # noqa: E402
from portal.models import Membership  # noqa: E402
from portal.models import OutboxMessage  # noqa: E402
from portal.models import User  # noqa: E402
from portal.models import utcnow  # noqa: E402
from portal.services import accounts  # noqa: E402
from portal.services import deletion  # noqa: E402
from portal.services import purge  # noqa: E402
from portal.services import taskstreams  # noqa: E402
from portal.services.users import Selection  # noqa: E402
from portal.services.users import UserFilter  # noqa: E402
from tests.bench import data  # noqa: E402
from tests.bench import figures as report  # noqa: E402

PASSWORD = "correct horse battery staple"
# The tables the builders fill: their indexes are created after the load (data.indexes_after).
LOADED = (User, Membership, GroupMember, AuditEvent, Device, ActionToken, OutboxMessage)
CSRF = re.compile(r'"X-CSRFToken": "([^"]+)"')
BUDGET_S = 2.0
CONFIG = {
    "SECRET_KEY": "bench",
    "BASE_URL": "http://portal.test",
    "RATELIMIT_ENABLED": False,
    "ARGON2_TIME_COST": 1,
    "ARGON2_MEMORY_COST": 64,
}


@contextmanager
def profiled(enabled: bool, name: str):
    if not enabled:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler()
    profiler.start()
    yield
    profiler.stop()
    path = Path(tempfile.gettempdir()) / f"bench_deletion_{name}.html"
    path.write_text(profiler.output_html())
    print(f"profile of {name}: {path}")


def fresh_app(url: str | None, sqlite_file: Path):
    """Return an app on an empty schema: ``url`` when given, else a new SQLite file."""
    app = create_app(dict(CONFIG, DATABASE_URL=url or f"sqlite:///{sqlite_file}"))
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
    return app


def settle_disk() -> None:
    """Flush the data set's pages to disk first, so writing them back is not billed to the work."""
    os.sync()


def insert(model, rows: list[dict], chunk: int = 20_000) -> None:
    for start in range(0, len(rows), chunk):
        data.insert(model, rows[start:start + chunk])


def add_people(account_id: int, count: int, prefix: str, *, deleted_at=None) -> list[int]:
    """Insert ``count`` people with one membership each in the account; return membership ids."""
    now = utcnow()
    insert(User, [
        {"email": f"{prefix}{n}@example.com", "name": f"{prefix.title()} {n}",
         "must_change_password": False, "failed_logins": 0, "version": 1, "created_at": now}
        for n in range(count)
    ])
    user_ids = db.session.scalars(
        sa.select(User.id).where(User.email.like(f"{prefix}%@example.com")).order_by(User.id)
    ).all()
    insert(Membership, [
        {"account_id": account_id, "user_id": user_id, "role": "member",
         "invite_state": "active", "created_at": now, "deleted_at": deleted_at}
        for user_id in user_ids
    ])
    return db.session.scalars(
        sa.select(Membership.id).where(Membership.user_id.in_(
            sa.select(User.id).where(User.email.like(f"{prefix}%@example.com"))))
        .order_by(Membership.id)
    ).all()


def add_groups(account_id: int, count: int) -> list[int]:
    """Insert ``count`` groups into the account; return their ids."""
    now = utcnow()
    insert(Group, [{"account_id": account_id, "name": f"G{g}", "name_key": f"g{g}",
                    "created_at": now} for g in range(count)])
    return db.session.scalars(
        sa.select(Group.id).where(Group.account_id == account_id).order_by(Group.id)
    ).all()


def bench_delete(app, users: int, selected: int, profile: bool) -> dict:
    """Delete ``selected`` users of an account of ``users`` (all matching, then checked ids)."""
    with app.app_context():
        admin = accounts.create_account("Bench", admin_email="admin@bench.example",
                                        admin_name="Bench Admin", password=PASSWORD)
        account_id, admin_id = admin.account_id, admin.id
        with data.indexes_after(*LOADED):
            bulk = add_people(account_id, selected, "bulk")
            ids = add_people(account_id, selected, "picked")
            add_people(account_id, max(0, users - 2 * selected), "other")
            now = utcnow()
            # Groups: bulk and picked users spread over groups, one assigned to a step with a
            # member outside the selection (no block), one whose only member is selected
            # (blocked).
            groups = add_groups(account_id, 5)
            insert(GroupMember, [{"group_id": groups[n % 4], "membership_id": m,
                                  "created_at": now} for n, m in enumerate(bulk + ids)])
            insert(GroupMember, [
                {"group_id": groups[0], "membership_id": admin_id, "created_at": now},
                {"group_id": groups[4], "membership_id": bulk[0], "created_at": now}])
            people = db.session.execute(
                sa.select(Membership.user_id).where(Membership.id.in_(bulk + ids))
            ).scalars().all()
            insert(Device, [
                {"user_id": u, "token_hash": f"{u:064d}", "kind": "web",
                 "name": "Firefox on Linux", "created_at": now, "last_seen_at": now,
                 "expires_at": now + timedelta(hours=12)}
                for u in people
            ])
        db.session.commit()
        data.analyze(db.engine)
        taskstreams.create_taskstream(admin, "Flow", [("One", groups[0]), ("Two", groups[4])])
        db.session.remove()
    settle_disk()

    with app.app_context():
        actor = db.session.get(Membership, admin_id)
        start = time.perf_counter()
        with profiled(profile, "delete_all_matching"):
            report = deletion.delete_users(actor, Selection(all_matching=True,
                                                            filter=UserFilter(q="bulk")))
        matching_s = time.perf_counter() - start
        assert report.deleted == selected - 1 and len(report.blocked) == 1, report
        db.session.remove()

    client = app.test_client()
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    response = client.post("/login", data={"email": "admin@bench.example", "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302
    # Signing in starts a new session, and with it a new CSRF token.
    token = CSRF.search(client.get("/admin/participants/users/").get_data(as_text=True)).group(1)
    start = time.perf_counter()
    with profiled(profile, "delete_ids_http"):
        response = client.post("/admin/participants/users/bulk/delete",
                               data={"ids": ids, "confirmed": "y"},
                               headers={"HX-Request": "true", "X-CSRFToken": token})
    http_s = time.perf_counter() - start
    assert response.status_code == 200 and "Deleted" in response.get_data(as_text=True)

    with app.app_context():
        actor = db.session.get(Membership, admin_id)
        start = time.perf_counter()
        restored = deletion.restore_users(actor, ids)
        restore_s = time.perf_counter() - start
        assert restored.restored == selected, restored
        live_devices = db.session.scalar(sa.select(sa.func.count(Device.id)).where(
            Device.revoked_at.is_(None)))
        assert live_devices == 2, live_devices  # the admin's session and the blocked user's
    return {"delete_all_matching_s": matching_s, "delete_ids_http_s": http_s,
            "restore_ids_s": restore_s}


def build_purge_data(memberships: int, *, shared: bool) -> None:
    """Add ``memberships`` deleted 31 days ago, with group memberships and an audit trail.

    ``shared``: each person also belongs (live) to another account, so only the membership
    goes. Otherwise it is the person's only one, and the person is erased with their two
    audit events, a device, an invitation link and an e-mail.
    """
    admin = accounts.create_account("Bench", admin_email="admin@bench.example",
                                    admin_name="Bench Admin", password=PASSWORD)
    with data.indexes_after(*LOADED):
        _purge_rows(admin, memberships, shared=shared)
    db.session.commit()
    data.analyze(db.engine)


def _purge_rows(admin, memberships: int, *, shared: bool) -> None:
    account_id = admin.account_id
    now = utcnow()
    add_people(account_id, memberships, "gone", deleted_at=now - timedelta(days=31))
    add_people(account_id, 1_000, "kept")
    pairs = db.session.execute(
        sa.select(Membership.id, Membership.user_id).where(Membership.deleted_at.is_not(None))
    ).all()
    if shared:
        other = accounts.create_account("Elsewhere", admin_email="admin@elsewhere.example",
                                        password=PASSWORD)
        insert(Membership, [{"account_id": other.account_id, "user_id": u, "role": "member",
                             "invite_state": "active", "created_at": now} for _, u in pairs])
    [group_id] = add_groups(account_id, 1)
    insert(GroupMember, [{"group_id": group_id, "membership_id": m, "created_at": now}
                         for m, _ in pairs])
    insert(AuditEvent, [
        {"account_id": account_id, "actor_user_id": admin.user_id, "actor_label": "Admin",
         "subject_user_id": u, "subject_label": f"Gone {u} <gone{u}@example.com>",
         "action": action, "details": details, "created_at": now}
        for m, u in pairs
        for action, details in (("user.added", {"role": "member", "linked": False}),
                                ("user.deleted", {}))
    ])
    if not shared:
        insert(Device, [
            {"user_id": u, "token_hash": f"{u:064d}", "kind": "web", "name": "Firefox on Linux",
             "created_at": now, "last_seen_at": now, "expires_at": now,
             "revoked_at": now, "revoked_reason": "deleted"}
            for _, u in pairs
        ])
        insert(ActionToken, [
            {"user_id": u, "account_id": account_id, "purpose": "invite",
             "token_hash": f"{u:064x}", "password_stamp": "x", "expires_at": now,
             "used_at": now, "created_at": now}
            for _, u in pairs
        ])
        insert(OutboxMessage, [
            {"account_id": account_id, "user_id": u, "membership_id": m, "kind": "invite",
             "to_addr": f"gone{u}@example.com", "subject": "You are invited",
             "body_text": "Hello", "state": "sent", "attempts": 1, "next_attempt_at": now,
             "created_at": now}
            for m, u in pairs
        ])


def bench_purge(app, memberships: int, batch: int, profile: bool, *, shared: bool,
                built: bool = False) -> dict:
    """Purge ``memberships`` past retention through the service (dry run, run, second run).

    ``built``: the database holds build_purge_data's rows already."""
    if not built:
        with app.app_context():
            build_purge_data(memberships, shared=shared)
            db.session.remove()
    settle_disk()
    with app.app_context():
        start = time.perf_counter()
        dry = purge.purge_expired(dry_run=True)
        dry_s = time.perf_counter() - start
        db.session.remove()
    with app.app_context():
        start = time.perf_counter()
        with profiled(profile, "purge_shared" if shared else "purge"):
            report = purge.purge_expired(batch=batch)
        purge_s = time.perf_counter() - start
        erased = 0 if shared else memberships
        assert (report.memberships, report.people) == (memberships, erased), report
        assert report.audit_events == 2 * erased, report
        again = purge.purge_expired()
        assert again.memberships == 0 and again.people == 0
        assert (dry.memberships, dry.people) == (report.memberships, report.people)
    return {"purge_s": purge_s, "dry_run_s": dry_s}


def raw_sqlite_purge(path: Path) -> float:
    """Time the full erasure in hand-written sqlite3 SQL on the same data, as a reference."""
    with tempfile.TemporaryDirectory() as workdir:
        copy = Path(workdir) / "raw.db"
        shutil.copyfile(path, copy)
        settle_disk()
        conn = sqlite3.connect(copy, isolation_level=None)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TEMP TABLE gone(id INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO gone SELECT user_id FROM memberships WHERE deleted_at IS NOT NULL")
        for sql in (
            "DELETE FROM group_members WHERE membership_id IN "
            "(SELECT id FROM memberships WHERE deleted_at IS NOT NULL)",
            "DELETE FROM outbox_messages WHERE membership_id IN "
            "(SELECT id FROM memberships WHERE deleted_at IS NOT NULL)",
            "UPDATE audit_events SET subject_label = 'deleted user #' || subject_user_id, "
            "subject_user_id = NULL WHERE subject_user_id IN (SELECT id FROM gone)",
            "DELETE FROM action_tokens WHERE user_id IN (SELECT id FROM gone)",
            "DELETE FROM devices WHERE user_id IN (SELECT id FROM gone)",
            "DELETE FROM users WHERE id IN (SELECT id FROM gone)",
        ):
            conn.execute(sql)
        conn.execute("COMMIT")
        seconds = time.perf_counter() - start
        conn.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--delete", type=int, default=10_000)
    parser.add_argument("--purge", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=purge.PURGE_BATCH)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", action="store_true", help="write pyinstrument HTML reports")
    report.add_argument(parser)
    args = parser.parse_args()
    url = args.database_url
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        results = bench_delete(fresh_app(url, work / "delete.db"), args.users, args.delete,
                               args.profile)
        shared = bench_purge(fresh_app(url, work / "shared.db"), args.purge, args.batch,
                             args.profile, shared=True)
        results |= {"purge_shared_s": shared["purge_s"], "dry_run_shared_s": shared["dry_run_s"]}
        app = fresh_app(url, work / "erase.db")
        built = False
        if url is None:
            # The floor erases a copy of the very data set the product's purge erases next.
            with app.app_context():
                build_purge_data(args.purge, shared=False)
                db.session.remove()
                db.engine.dispose()
            results["raw_sqlite3_erase_s"] = raw_sqlite_purge(work / "erase.db")
            built = True
        erase = bench_purge(app, args.purge, args.batch, args.profile, shared=False,
                            built=built)
        results |= {"purge_erase_s": erase["purge_s"], "dry_run_erase_s": erase["dry_run_s"]}
    database = "postgresql" if url else "sqlite"
    n, p = f"{args.delete:,}", f"{args.purge:,}"
    rows = [
        (f"delete {n} of {args.users:,} (all matching, service)", "delete_all_matching_s", True),
        (f"delete {n} checked ids (HTTP, htmx)", "delete_ids_http_s", True),
        (f"restore {n} ids (service)", "restore_ids_s", True),
        (f"purge {p} memberships, people stay elsewhere", "purge_shared_s", True),
        (f"purge {p} memberships + erase {p} people, trail", "purge_erase_s", True),
        ("  same erasure, hand-written sqlite3, one txn", "raw_sqlite3_erase_s", False),
        (f"dry run, {p} shared / erased", "dry_run_erase_s", False),
    ]
    print(f"{'work (' + database + ')':<56} {'seconds':>8} {'budget':>7}  verdict")
    for label, key, budgeted in rows:
        if key not in results:
            continue
        seconds = results[key]
        verdict = ("ok" if seconds < BUDGET_S else "OVER") if budgeted else "reference"
        budget = f"{BUDGET_S:.1f}" if budgeted else "-"
        print(f"{label:<56} {seconds:>8.3f} {budget:>7}  {verdict}")
    print(json.dumps({"bench": "deletion", "database": database, "users": args.users,
                      "selected": args.delete, "purged": args.purge, "batch": args.batch,
                      **{k: round(v, 4) for k, v in results.items()}}))
    floors = {"purge_erase_s": ("raw_sqlite3_erase_s", "sqlite3 by hand")}
    figures = []
    for label, key, budgeted in rows:
        if key not in results or key in ("raw_sqlite3_erase_s",):
            continue
        floor_key, floor_name = floors.get(key, (None, None))
        figures.append(report.figure(
            key, label.strip(), round(results[key], 4), "s",
            budget=BUDGET_S if budgeted else None,
            floor=round(results[floor_key], 4) if floor_key in results else None,
            floor_name=floor_name if floor_key in results else None))
    report.write(args.json_path, "deletion", database, figures,
                 size={"users": args.users, "delete": args.delete, "purge": args.purge,
                       "batch": args.batch}, raw=results)


if __name__ == "__main__":
    main()
