"""Benchmark: SCIM provisioning at 100,000 users in one account.

Run: .venv/bin/python tests/bench/bench_scim.py [--users N] [--creates N] [--lookups N]
Targets (issue 17): GET /scim/v2/Users?filter=userName eq "…" < 10 ms; a provider's full sync
pass (every user, 100 a page) < 30 s; 10,000 users created one POST at a time at >= 100
requests/s on SQLite; PATCH adding (and removing) 1,000 group members < 1 s.
Every request goes through the Flask app (WSGI, bearer token, JSON both ways) as a provider's
would, minus the network. PORTAL_BENCH_DATABASE_URL=postgresql+psycopg://... runs it on
PostgreSQL (an empty database). Prints a table and one JSON line.
"""
import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Base  # noqa: E402
from portal.models import Membership  # noqa: E402
from portal.models import ScimUserLink  # noqa: E402
from portal.models import User  # noqa: E402
from portal.models import utcnow  # noqa: E402
from portal.services import accounts  # noqa: E402
from portal.services import scim_tokens  # noqa: E402
from tests.bench import data  # noqa: E402
from tests.bench.bench_csv import server_cpu_s  # noqa: E402
from tests.bench import figures as report  # noqa: E402

PASSWORD = "correct horse battery staple"
TARGETS = {"filter_username_ms": 10, "filter_external_id_ms": 10, "sync_pass_s": 30,
           "create_per_s": 100, "patch_add_1000_ms": 1000, "patch_remove_1000_ms": 1000}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def make_app(url: str):
    return create_app({
        "DATABASE_URL": url, "SECRET_KEY": "bench", "BASE_URL": "http://portal.example",
        "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 64, "RATELIMIT_ENABLED": False,
        "TESTING": True,
    })


def build(users: int) -> tuple[str, int]:
    """Load the account set-wise: users (1 in 100 deactivated, each with an externalId) and
    a tenth as many in another account; return a token and the account id."""
    Base.metadata.create_all(db.engine)
    bench = accounts.create_account("Bench", admin_email="admin@bench.example",
                                    admin_name="Bench Admin", password=PASSWORD)
    other = accounts.create_account("Elsewhere", admin_email="admin@elsewhere.example",
                                    admin_name="Other Admin", password=PASSWORD)
    now = utcnow()
    first_user = db.session.scalar(sa.select(sa.func.max(User.id))) + 1
    total = users + users // 10
    bench_id, other_id = bench.account_id, other.account_id
    with data.indexes_after(User, Membership, ScimUserLink):
        for start in range(0, total, 20_000):
            stop = min(total, start + 20_000)
            data.insert(User, [
                {"id": first_user + n, "email": f"user{n:06d}@example{n % 7}.org",
                 "name": f"Person {n:06d}", "created_at": now, "failed_logins": 0,
                 "must_change_password": False, "version": 1} for n in range(start, stop)])
            data.insert(Membership, [
                {"account_id": bench_id if n < users else other_id,
                 "user_id": first_user + n, "role": "member", "invite_state": "active",
                 "created_at": now, "deleted_at": now if n % 100 == 0 else None}
                for n in range(start, stop)])
        db.session.commit()
        ids = db.session.execute(sa.select(Membership.id, Membership.user_id)
                                 .where(Membership.account_id == bench_id)).all()
        data.insert(ScimUserLink, [
            {"membership_id": mid, "external_id": f"ext-{uid}", "modified_at": now}
            for mid, uid in ids])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # The users were inserted with their ids: move the sequence past them.
        db.session.execute(sa.text(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))"))
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    _token, raw = scim_tokens.create_token(accounts.operator("Bench"), "Bench IdP")
    return raw, bench.account_id


CPU: list[float] = []


def timed(call) -> float:
    """Return the wall time of a call in ms (and note its CPU time: the machine may be busy)."""
    start, cpu = time.perf_counter(), time.process_time()
    call()
    CPU.append((time.process_time() - cpu) * 1000)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--creates", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--database-url", default=os.environ.get("PORTAL_BENCH_DATABASE_URL"))
    report.add_argument(parser)
    args = parser.parse_args()
    url = args.database_url
    tmp = tempfile.TemporaryDirectory()
    url = url or f"sqlite:///{tmp.name}/bench.db"
    app = make_app(url)
    rng = random.Random(17)
    results: dict[str, float] = {}
    with app.app_context():
        t0 = time.perf_counter()
        token, _account_id = build(args.users)
        print(f"loaded {args.users:,} users on {db.engine.dialect.name} "
              f"in {time.perf_counter() - t0:.1f} s")
        db.session.remove()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}

    def get(path, **query):
        response = client.get(f"/scim/v2/{path}", headers=headers, query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def server_cpu() -> float | None:
        """The PostgreSQL server's CPU seconds so far (None on SQLite: it is in process_time)."""
        with app.app_context():
            return server_cpu_s()

    def server_since(key: str, before: float | None, scale: float = 1.0) -> None:
        after = server_cpu()
        if before is not None and after is not None:
            results[key] = (after - before) * scale

    get("Users", count=1)  # warm up
    server = server_cpu()
    samples = []
    for _ in range(args.lookups):
        n = rng.randrange(args.users)
        samples.append(timed(lambda n=n: get(
            "Users", filter=f'userName eq "user{n:06d}@example{n % 7}.org"')))
    results["filter_username_ms"] = statistics.median(samples)
    results["filter_username_p95_ms"] = sorted(samples)[int(len(samples) * 0.95)]
    results["filter_username_cpu_ms"] = statistics.median(CPU[-len(samples):])
    server_since("filter_username_server_cpu_ms", server, 1000 / len(samples))
    samples = []
    ext_ids = list(range(1, args.users, max(1, args.users // args.lookups)))
    for _ in range(args.lookups):
        n = rng.choice(ext_ids)
        samples.append(timed(lambda n=n: get("Users", filter=f'externalId eq "ext-{n}"')))
    results["filter_external_id_ms"] = statistics.median(samples)

    start, cpu, server = time.perf_counter(), time.process_time(), server_cpu()
    seen, index = 0, 1
    while True:
        page = get("Users", startIndex=index, count=100)
        seen += len(page["Resources"])
        index += 100
        if index > page["totalResults"]:
            break
    results["sync_pass_s"] = time.perf_counter() - start
    results["sync_pass_cpu_s"] = time.process_time() - cpu
    server_since("sync_pass_server_cpu_s", server)
    results["sync_pass_users"] = seen
    slowest = timed(lambda: get("Users", startIndex=page["totalResults"] - 99, count=100))
    results["sync_last_page_ms"] = slowest

    start, cpu, server = time.perf_counter(), time.process_time(), server_cpu()
    created = []
    for n in range(args.creates):
        response = client.post("/scim/v2/Users", headers=headers, data=json.dumps({
            "schemas": [USER], "userName": f"new{n:05d}@provisioned.example",
            "name": {"givenName": "New", "familyName": f"Person {n}"},
            "externalId": f"new-{n}", "active": True}))
        assert response.status_code == 201, response.get_data(as_text=True)
        created.append(response.get_json()["id"])
    elapsed = time.perf_counter() - start
    results["create_per_s"] = args.creates / elapsed
    results["create_per_cpu_s"] = args.creates / (time.process_time() - cpu)
    server_since("create_server_cpu_ms", server, 1000 / args.creates)

    group = client.post("/scim/v2/Groups", headers=headers, data=json.dumps(
        {"schemas": [GROUP], "displayName": "Everyone new"})).get_json()
    members = [{"value": i} for i in created[:1000]]

    def patch(op):
        response = client.patch(f"/scim/v2/Groups/{group['id']}", headers=headers,
                                data=json.dumps({"schemas": [PATCH], "Operations": [
                                    {"op": op, "path": "members", "value": members}]}))
        assert response.status_code == 200, response.get_data(as_text=True)

    results["patch_add_1000_ms"] = timed(lambda: patch("add"))
    results["patch_remove_1000_ms"] = timed(lambda: patch("remove"))

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times include "
          "waiting for the CPU; *_cpu_* is this process's own time, *_server_cpu_* the "
          "PostgreSQL server's)")
    print(f"{'measure':<26}{'result':>12}{'target':>10}")
    for key, value in results.items():
        target = TARGETS.get(key)
        ok = "" if target is None else (
            " ok" if (value >= target if key == "create_per_s" else value <= target) else " SLOW")
        print(f"{key:<26}{value:>12,.1f}{'' if target is None else target:>10}{ok}")
    print(json.dumps({"database": url.split(":")[0], "users": args.users, **{
        k: round(v, 2) for k, v in results.items()}}))
    names = {"filter_username_ms": "SCIM userName eq filter, median",
             "filter_external_id_ms": "SCIM externalId eq filter, median",
             "sync_pass_s": f"SCIM full sync pass ({results['sync_pass_users']:,} users)",
             "create_per_s": f"SCIM creates, one POST at a time ({args.creates:,})",
             "patch_add_1000_ms": "SCIM PATCH adding 1,000 group members",
             "patch_remove_1000_ms": "SCIM PATCH removing 1,000 group members"}
    units = {"filter_username_ms": "ms", "filter_external_id_ms": "ms", "sync_pass_s": "s",
             "create_per_s": "/s", "patch_add_1000_ms": "ms", "patch_remove_1000_ms": "ms"}
    report.write(args.json_path, "scim", report.database_name(args.database_url), [
        report.figure(key, name, round(results[key], 2), units[key], budget=TARGETS[key],
                      better="higher" if key == "create_per_s" else "lower")
        for key, name in names.items()
    ], size={"users": args.users, "creates": args.creates, "lookups": args.lookups},
        raw=results)


if __name__ == "__main__":
    main()
