"""Benchmark: the audit page (/admin/audit) at 1,000,000 events in one account.

    .venv/bin/python tests/bench/bench_audit.py [--events 1000000] [--people 10000]
        [--repeat 15] [--database-url postgresql+psycopg://...] [--json PATH]

Builds one account's trail set-wise (plus a tenth as many events in another account, which no
page may show), signs its admin in through the real login page and times whole pages through
the Flask test client, as a browser gets them: the first page, a page half a million events
deep (Older) and back (Newer), each filter (who, whom by address and by part of a name, what,
from–to) and two combined; and Export to CSV of one topic in rows/s. Budget (DESIGN §5b):
< 50 ms per page. Prints a table and one JSON line; ``--json`` writes tests/bench/figures.py's
document for `make bench`.
"""
import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from portal.extensions import db  # noqa: E402
from portal.models import AuditEvent  # noqa: E402
from portal.models import Base  # noqa: E402
from portal.models import Membership  # noqa: E402
from portal.models import User  # noqa: E402
from portal.models import utcnow  # noqa: E402
from tests.bench import data  # noqa: E402
from tests.bench import figures as report  # noqa: E402
from tests.bench.data import PASSWORD  # noqa: E402
from tests.bench.figures import timed  # noqa: E402
# The groups bench's app (test settings, no CSRF) and its timer (median wall and CPU ms).
from tests.bench.bench_groups import make_app  # noqa: E402

BUDGET_MS = 50.0
FIRST = ["Ana", "Bo", "Chloé", "Dmitri", "Emeka", "Fatima", "Hana", "Jun", "Kofi", "Léa",
         "Mateus", "Nadia", "Oskar", "Priya", "Rūta", "Søren", "Tomás", "Zoë"]
LAST = ["Lima", "Berg", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Huang", "Ivanova",
        "Jensen", "Kowalski", "López", "Müller", "Nakamura", "Petrov", "Rossi", "Šimić"]
# (action, weight, who acts: "self" the person, "admin" one of the admins, None nobody, details)
ACTIONS = [
    ("login", 40, "self", {"device": "Chrome 131 on Windows", "kind": "web"}),
    ("logout", 14, "self", {"device": "Chrome 131 on Windows"}),
    ("login.failed", 5, None, {}),
    ("login.throttled", 0.3, None, {"failures": 10, "minutes": 1}),
    ("group.member_added", 10, "admin", {"group": "Team 07", "group_id": 7}),
    ("group.member_removed", 3, "admin", {"group": "Team 03", "group_id": 3}),
    ("user.added", 8, "admin", {"role": "member"}),
    ("user.updated", 6, "admin", {"changes": {"phone": [None, "+44 20 7946 0958"]}}),
    ("device.revoked", 2, "admin", {"device": "iPad app 4.2", "kind": "ipad"}),
    ("user.deleted", 2, "admin", {}),
    ("invitation.resent", 5, "admin", {}),
    ("access.refused", 0.5, "admin", {"route": "/admin/participants/users/9", "kind": "Membership"}),
    ("users.exported", 0.2, "admin", {"count": 10000}),
]
DAYS = 365


EVENT_FIELDS = ("account_id", "actor_user_id", "actor_label", "subject_user_id", "subject_label",
                "action", "details", "ip", "created_at")


def events(count: int, admin: tuple[int, int], other: tuple[int, int], users: list[dict],
           people: int, labels: dict, rng: random.Random, start, step):
    """Yield ``count`` events as EVENT_FIELDS tuples, in time order: each 11th in the other
    account, the action drawn by ACTIONS' weights, its subject one of the account's people at
    random, its actor the person, one of the admins, or nobody as ACTIONS says. ``admin`` and
    ``other``: (account id, admin's user id) of the two accounts (plain values: nothing may
    query the database while COPY runs)."""
    (here, admin_id), (there, other_id) = admin, other
    admins = [(admin_id, "Bench Admin <admin@bench.example>")] + [
        (u["id"], labels[u["id"]]) for u in users[:4]]
    elsewhere_admin = (other_id, "Other Admin <admin@elsewhere.example>")
    names, weights = [a[0] for a in ACTIONS], [a[1] for a in ACTIONS]
    spec = {a[0]: a for a in ACTIONS}
    here_ids = [u["id"] for u in users[:people]]
    there_ids = [u["id"] for u in users[people:]]
    chunk = 50_000
    for first in range(0, count, chunk):
        size = min(chunk, count - first)
        actions = rng.choices(names, weights, k=size)
        for n, action in enumerate(actions, start=first):
            elsewhere = n % 11 == 10
            _name, _weight, who, details = spec[action]
            subject = rng.choice(there_ids if elsewhere else here_ids)
            if who == "self":
                actor_id, actor_label = subject, labels[subject]
            elif who == "admin":
                actor_id, actor_label = elsewhere_admin if elsewhere else rng.choice(admins)
            else:
                actor_id = actor_label = None
            yield (there if elsewhere else here, actor_id, actor_label,
                   subject, labels[subject], action, details, "192.0.2.10", start + step * n)


def build(events_wanted: int, people: int, rng: random.Random) -> dict:
    """Create two accounts, their people and ``events_wanted`` events in the first (a tenth in
    the second), set-wise, spread over a year, in time order.

    The events go in through the driver (tests/bench/data.py: COPY, or sqlite3's executemany)
    with the table's indexes created after the load, as one sort each: entering 1,100,000
    rows into 6 B-trees at random places took 6-11 minutes on SQLite under load."""
    Base.metadata.create_all(db.engine)
    admin, other, users, members = data.two_accounts_with_people(people, lambda n: {
        "email": f"person{n:06d}@example.org",
        "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}", "password_hash": None})
    now = utcnow()
    data.insert(User, users)
    data.insert(Membership, members)
    db.session.commit()
    labels = {u["id"]: f"{u['name']} <{u['email']}>" for u in users}
    start = now - timedelta(days=DAYS)
    total = events_wanted + events_wanted // 10
    step = timedelta(days=DAYS) / total
    with data.indexes_after(AuditEvent):
        data.insert(AuditEvent, events(
            total, (admin.account_id, admin.user_id), (other.account_id, other.user_id), users,
            people, labels, rng, start, step), columns=EVENT_FIELDS, chunk=50_000)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE audit_events")
    mid = db.session.execute(
        sa.select(AuditEvent.id, AuditEvent.created_at)
        .where(AuditEvent.account_id == admin.account_id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .offset(events_wanted // 2).limit(1)
    ).one()
    return {"account_id": admin.account_id, "deep_id": mid.id, "deep_day": mid.created_at.date(),
            "person": users[123 % people]["email"],
            "name_part": users[321 % people]["name"].split()[1],
            "other_label": "admin@elsewhere.example"}


def measure(app, data: dict, repeat: int) -> tuple[dict, dict]:
    client = app.test_client()
    response = client.post("/login", data={"email": "admin@bench.example", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    day = data["deep_day"]
    week = (day - timedelta(days=7)).isoformat()
    pages = {
        "first_page": {},
        "older_deep": {"before": data["deep_id"]},
        "newer_deep": {"after": data["deep_id"]},
        "who_admin": {"who": "admin@bench.example"},
        "whom_person": {"whom": data["person"]},
        "whom_name_part": {"whom": data["name_part"]},
        "what_failures": {"what": "failures"},
        "what_sign_ins": {"what": "sign-ins"},
        "what_refused_deep": {"what": "refused", "before": data["deep_id"]},
        "one_day": {"from": day.isoformat(), "to": day.isoformat()},
        "admin_changes_week": {"what": "admin", "from": week, "to": day.isoformat()},
        "whom_person_sign_ins": {"whom": data["person"], "what": "sign-ins"},
    }
    figures, shown = {}, {}
    for name, query in pages.items():
        url = "/admin/audit/?" + urlencode(query)

        def get(url=url):
            answer = client.get(url)
            assert answer.status_code == 200, (url, answer.status_code)
            return answer

        html = get().get_data(as_text=True)
        assert data["other_label"] not in html, name  # never another account's events
        shown[name] = html.count('<td class="time">')
        figures[name] = timed(get, repeat)
    start = time.perf_counter()
    exported = client.get("/admin/audit/export?what=failures")
    lines = exported.get_data().count(b"\r\n") - 1
    seconds = time.perf_counter() - start
    figures["export_rows_per_s"] = (lines / seconds, 0.0)
    shown["export_rows"] = lines
    return figures, shown


NAMES = {
    "first_page": "first page", "older_deep": "Older, 500,000 events deep",
    "newer_deep": "Newer, 500,000 events deep", "who_admin": "who: the admin (by address)",
    "whom_person": "whom: one person (by address)",
    "whom_name_part": "whom: part of a name (up to 20 people)",
    "what_failures": "what: failed sign-ins", "what_sign_ins": "what: sign-ins",
    "what_refused_deep": "what: refused requests, deep", "one_day": "from–to: one day",
    "admin_changes_week": "admin changes in a week", "whom_person_sign_ins": "whom + what",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--database-url", default=os.environ.get("PORTAL_BENCH_DATABASE_URL"))
    report.add_argument(parser)
    args = parser.parse_args()
    rng = random.Random(15)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        app = make_app(url)
        with app.app_context():
            start = time.perf_counter()
            data = build(args.events, args.people, rng)
            build_s = time.perf_counter() - start
        figures, shown = measure(app, data, args.repeat)
        with app.app_context():
            db.engine.dispose()
    dialect = sa.engine.make_url(url).get_backend_name()
    load = os.getloadavg()[0]
    print(f"audit benchmark: {args.events:,} events in one account (+{args.events // 10:,} in "
          f"another), {args.people:,} people, {dialect}; built in {build_s:.1f} s; medians of "
          f"{args.repeat} whole pages; load average (1 min) {load:.1f} on {os.cpu_count()} cores")
    print(f"{'page':<42}{'rows':>6}{'wall ms':>10}{'cpu ms':>10}{'budget':>8}  verdict")
    for key, name in NAMES.items():
        wall, cpu = figures[key]
        print(f"{name:<42}{shown[key]:>6}{wall:>10.1f}{cpu:>10.1f}{BUDGET_MS:>8.0f}  "
              f"{'ok' if wall < BUDGET_MS else 'OVER'}")
    rate = figures["export_rows_per_s"][0]
    print(f"{'Export to CSV, failed sign-ins':<42}{shown['export_rows']:>6}  {rate:,.0f} rows/s")
    print(json.dumps({"bench": "audit", "database": dialect, "events": args.events,
                      "load_average": round(load, 2),
                      "wall_ms": {k: round(figures[k][0], 2) for k in NAMES},
                      "cpu_ms": {k: round(figures[k][1], 2) for k in NAMES},
                      "export_rows_per_s": round(rate), "budget_ms": BUDGET_MS,
                      "ok": all(figures[k][0] < BUDGET_MS for k in NAMES)}))
    report.write(args.json_path, "audit", report.database_name(args.database_url), [
        report.figure(key, f"audit page, {name}", round(figures[key][0], 2), "ms",
                      budget=BUDGET_MS) for key, name in NAMES.items()
    ] + [report.figure("export_rows_per_s", "audit Export to CSV", round(rate), "rows/s",
                       better="higher")],
        size={"events": args.events, "people": args.people, "repeat": args.repeat},
        raw={"shown": shown, "build_s": round(build_s, 1)})


if __name__ == "__main__":
    main()
