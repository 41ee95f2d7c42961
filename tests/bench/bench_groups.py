"""Benchmark: groups at 100,000 users and 50 groups in one account.

Run: .venv/bin/python tests/bench/bench_groups.py [--users N] [--repeat N] [--profile NAME]
Budgets (issue #6, DESIGN §5b): adding 10,000 selected users ("all matching") to a group < 1 s,
set-wise and skipping those already in it; the groups list with member counts < 25 ms; the
member picker's search < 25 ms. Lists and searches are timed through the Flask test client
(an htmx request, as the page makes it); the bulk add through the service the views call.
PORTAL_BENCH_DATABASE_URL=postgresql+psycopg://... runs it on PostgreSQL (an empty database).
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
from portal.models import Group  # noqa: E402
from portal.models import GroupMember  # noqa: E402
from portal.models import Membership  # noqa: E402
from portal.models import User  # noqa: E402
from portal.models import utcnow  # noqa: E402
from portal.services import groups  # noqa: E402
from portal.services import taskstreams  # noqa: E402
from portal.services.users import Selection  # noqa: E402
from portal.services.users import UserFilter  # noqa: E402
from tests.bench import data  # noqa: E402
from tests.bench import figures as report  # noqa: E402
from tests.bench.data import PASSWORD  # noqa: E402
from tests.bench.figures import profiled  # noqa: E402
from tests.bench.figures import timed  # noqa: E402

FIRST = ["Ana", "Björn", "Chloé", "Dmitri", "Emeka", "Fatima", "Grégoire", "Hana", "Iñaki",
         "Jun", "Kofi", "Léa", "Mateus", "Nadia", "Oskar", "Priya", "Quentin", "Rūta", "Søren",
         "Tomás", "Zoë", "Ævar", "Łucja", "Đorđe", "Şule"]
LAST = ["Álvarez", "Berg", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Huang",
        "Ivanova", "Jensen", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrov",
        "Rossi", "Šimić", "Ørsted", "Văn", "Żak", "Grünwald"]
BUDGETS_MS = {"add_10k_new": 1000, "add_10k_all_present": 1000, "add_10k_half_present": 1000,
              "groups_list": 25, "groups_list_search": 25, "picker_common": 25,
              "picker_rare": 25, "picker_none": 25, "picker_email": 25, "group_page": 25}


def make_app(url: str):
    return create_app({
        "DATABASE_URL": url, "SECRET_KEY": "bench", "BASE_URL": "http://portal.example",
        "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 64, "RATELIMIT_ENABLED": False,
        "WTF_CSRF_ENABLED": False, "TESTING": True,
    })


def build(users: int, rng: random.Random):
    """Create the data set set-wise: users, memberships, 50 groups of ~4,000, 5 taskstreams."""
    Base.metadata.create_all(db.engine)
    now = utcnow()
    # One user in ten belongs to the other account: the searches must skip them.
    admin, _other, people, members = data.two_accounts_with_people(users, lambda n: {
        "email": f"user{n:06d}@example{n % 7}.org",
        "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "failed_logins": 0, "must_change_password": False, "version": 1,
    }, lambda n: {"deleted_at": now if n % 200 == 0 else None})
    made = [Group(account_id=admin.account_id, name=f"Team {n:02d}", name_key=f"team {n:02d}",
                  created_at=now) for n in range(1, 51)]
    db.session.add_all(made)
    db.session.flush()
    made = [(g.id, g) for g in made]  # ids read now: nothing may query during a COPY
    with data.indexes_after(User, Membership, GroupMember):
        data.insert(User, people)
        data.insert(Membership, members)
        ids = list(db.session.scalars(sa.select(Membership.id).where(
            Membership.account_id == admin.account_id, Membership.id != admin.id)))
        pairs = {(g, mid) for mid in ids for g, _group in rng.sample(made, 2)}
        data.insert(GroupMember, [
            {"group_id": g, "membership_id": m, "created_at": now} for g, m in pairs])
    db.session.commit()
    data.analyze(db.engine)
    made = [group for _id, group in made]
    for n in range(5):
        taskstreams.create_taskstream(admin, f"Stream {n}", [
            (f"Step {k}", made[(n * 3 + k) % 50].id) for k in range(3)])
    return admin.id


def measure(app, admin_id: int, users: int, repeat: int, profile: str | None) -> dict:
    figures = {}
    with app.app_context():
        actor = db.session.get(Membership, admin_id)
        # "all matching" user00…: exactly 10,000 users (user000000 … user009999), fewer in a
        # smaller data set; one in 200 of them is deleted (n % 200 == 0) and never added.
        ten_k = Selection(all_matching=True, filter=UserFilter(q="user00"))
        half = Selection(all_matching=True, filter=UserFilter(q="user000"))
        in_ten_k, in_half = min(users, 10_000), min(users, 1_000)
        live_ten_k = in_ten_k - -(-in_ten_k // 200)
        live_half = in_half - -(-in_half // 200)
        runs = {"add_10k_new": [], "add_10k_all_present": [], "add_10k_half_present": []}

        def clock(name, func):
            start, start_cpu = time.perf_counter(), time.process_time()
            result = func()
            runs[name].append(((time.perf_counter() - start) * 1000,
                               (time.process_time() - start_cpu) * 1000))
            return result

        for n in range(max(3, repeat // 10)):
            gid = groups.create_group(actor, f"Bulk {n}").id
            result = clock("add_10k_new", lambda: profiled(
                "add", profile if n == 0 else None,
                lambda: groups.add_to_groups(actor, [gid], ten_k)))
            assert result.added == live_ten_k, result
            again = clock("add_10k_all_present", lambda: groups.add_to_groups(actor, [gid], ten_k))
            assert again.added == 0
            fresh = groups.create_group(actor, f"Half {n}", []).id
            groups.add_to_groups(actor, [fresh], half)
            mixed = clock("add_10k_half_present",
                          lambda: groups.add_to_groups(actor, [fresh], ten_k))
            assert mixed.added == live_ten_k - live_half, mixed
        for name, pairs in runs.items():
            figures[name] = tuple(statistics.median(p[i] for p in pairs) for i in (0, 1))
        # Back to the stated data set (50 groups) for the list and page timings.
        groups.delete_groups(actor, list(db.session.scalars(
            sa.select(Group.id).where(Group.name.like("Bulk %") | Group.name.like("Half %")))))
        big_group = db.session.scalar(sa.select(Group.id).where(Group.name == "Team 07"))
    client = app.test_client()
    response = client.post("/login", data={"email": "admin@bench.example", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    hx = {"HX-Request": "true"}

    def get(url):
        def call():
            answer = client.get(url, headers=hx)
            assert answer.status_code == 200, (url, answer.status_code)
            return answer
        return call

    pages = {
        "groups_list": "/admin/participants/groups/",
        "groups_list_search": "/admin/participants/groups/?q=team%201",
        "picker_common": "/admin/participants/groups/new?q=ana",
        "picker_rare": "/admin/participants/groups/new?q=user099999",
        "picker_none": "/admin/participants/groups/new?q=zzzz",
        "picker_email": "/admin/participants/groups/new?q=user0500",
        "group_page": f"/admin/participants/groups/{big_group}",
    }
    for name, url in pages.items():
        figures[name] = timed(lambda: profiled(name, profile, get(url)), repeat)
    with app.app_context():
        counted = groups.list_groups(db.session.get(Membership, admin_id)).rows
        figures["members_of_first_group"] = counted[0].members
        figures["load_average"] = os.getloadavg()[0]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--profile", default=None, help="add, or a page name, to profile it")
    parser.add_argument("--database-url", default=os.environ.get("PORTAL_BENCH_DATABASE_URL"))
    report.add_argument(parser)
    args = parser.parse_args()
    rng = random.Random(6)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        app = make_app(url)
        with app.app_context():
            start = time.perf_counter()
            admin_id = build(args.users, rng)
            build_s = time.perf_counter() - start
        figures = measure(app, admin_id, args.users, args.repeat, args.profile)
        with app.app_context():
            db.engine.dispose()
    dialect = sa.engine.make_url(url).get_backend_name()
    print(f"groups benchmark: {args.users:,} users, 50 groups (the first has "
          f"{figures['members_of_first_group']:,} members), "
          f"{dialect}; data set built in {build_s:.1f} s; medians of "
          f"{args.repeat} runs (bulk adds: {max(3, args.repeat // 10)})")
    print(f"load average (1 min) {figures['load_average']:.1f} on {os.cpu_count()} cores")
    print(f"{'measure':<24}{'wall ms':>10}{'cpu ms':>10}{'budget':>10}  verdict")
    verdicts = {}
    for name, budget in BUDGETS_MS.items():
        wall, cpu = figures[name]
        verdicts[name] = wall < budget
        print(f"{name:<24}{wall:>10.1f}{cpu:>10.1f}{budget:>10}  "
              f"{'ok' if wall < budget else 'OVER'}")
    print(json.dumps({"bench": "groups", "database": dialect, "users": args.users,
                      "load_average": round(figures["load_average"], 2),
                      "wall_ms": {k: round(figures[k][0], 2) for k in BUDGETS_MS},
                      "cpu_ms": {k: round(figures[k][1], 2) for k in BUDGETS_MS},
                      "budget_ms": BUDGETS_MS, "ok": all(verdicts.values())}))
    names = {"add_10k_new": "add 10,000 (all matching) to a new group",
             "add_10k_all_present": "add 10,000 to a group that has them all",
             "add_10k_half_present": "add 10,000 to a group that has half",
             "groups_list": "groups list", "groups_list_search": "groups list, search",
             "picker_common": "member picker, common name", "picker_rare": "member picker, rare",
             "picker_none": "member picker, no hits", "picker_email": "member picker, e-mail",
             "group_page": "a group's page"}
    report.write(args.json_path, "groups", report.database_name(args.database_url), [
        report.figure(key, name, round(figures[key][0], 2), "ms", budget=BUDGETS_MS[key])
        for key, name in names.items()
    ], size={"users": args.users, "repeat": args.repeat},
        raw={k: v for k, v in figures.items()})


if __name__ == "__main__":
    main()
