"""Sign-in throughput with OWASP argon2id (m=19456, t=2, p=1) and the per-request device check.

    .venv/bin/python tests/bench/bench_auth.py [--users 100000] [--sign-ins 60]

Builds its own SQLite database (100,000 people, memberships and live devices, inserted
set-wise), then measures through the real services and the Flask test client:
- sign-ins per second on one core (service ``auth.log_in`` and ``POST /api/v1/sessions``),
  and with two threads (argon2 releases the GIL; the hash runs outside the write lock);
- the per-request device check (``load_user_from_request``: token → live Device → User),
  which is what every signed-in request adds. Budget: under 1 ms.
Prints a table and one JSON line.
"""
import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from portal import create_app  # noqa: E402
from portal.session import load_user_from_request  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Base  # noqa: E402
from portal.models import Device  # noqa: E402
from portal.models import Membership  # noqa: E402
from portal.models import User  # noqa: E402
from portal.models import utcnow  # noqa: E402
from portal.services import accounts  # noqa: E402
from portal.services import auth  # noqa: E402
from portal.services import passwords  # noqa: E402
from portal.services import tokens  # noqa: E402
from tests.bench import data  # noqa: E402
from tests.bench import figures as report  # noqa: E402

PASSWORD = "correct horse battery staple"
BODY = {"password": PASSWORD, "device_id": "bench", "device_name": "Bench", "kind": "app",
        "app_version": "1.0"}


def build(app, people: int) -> tuple[str, list[str]]:
    """Create one account with ``people`` users and a live device each; return an e-mail and tokens."""
    with app.app_context():
        Base.metadata.create_all(db.engine)
        admin = accounts.create_account("Bench", admin_email="admin@bench.example.com", password=PASSWORD)
        account_id = admin.account_id
        now = utcnow()
        stored = passwords.hasher().hash(PASSWORD)
        raw = [f"bench-token-{n:06d}-" + "x" * 24 for n in range(people)]
        # Driver-level inserts, indexes and search table after the load (tests/bench/data.py).
        with data.indexes_after(User, Membership, Device):
            data.insert(User, [
                {"email": f"user{n}@bench.example.com", "name": f"User {n}",
                 "password_hash": stored, "must_change_password": False, "failed_logins": 0,
                 "version": 1, "created_at": now}
                for n in range(people)])
            conn = db.session.connection()
            conn.execute(sa.insert(Membership).from_select(
                ["account_id", "user_id", "role", "invite_state", "created_at"],
                sa.select(sa.literal(account_id), User.id, sa.literal("member"),
                          sa.literal("active"), sa.literal(now))
                .where(User.email.like("user%@bench.example.com"))))
            ids = list(db.session.scalars(sa.select(User.id).where(
                User.email.like("user%@bench.example.com")).order_by(User.id)))
            data.insert(Device, [
                {"user_id": uid, "account_id": account_id, "token_hash": tokens.digest(token),
                 "kind": "web", "name": "Bench browser", "created_at": now, "last_seen_at": now,
                 "expires_at": now + timedelta(hours=12)}
                for uid, token in zip(ids, raw)])
        db.session.commit()
    return "user1@bench.example.com", raw


def sign_ins_per_second(app, email: str, count: int, threads: int) -> float:
    """Run ``count`` service sign-ins spread over ``threads`` threads; return sign-ins/s."""
    per_thread = count // threads

    def work():
        with app.app_context():
            client = auth.Client(kind="app", name="bench", app_version="1")
            for _ in range(per_thread):
                auth.log_in(email, PASSWORD, client)
            db.session.remove()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return per_thread * threads / (time.perf_counter() - start)


def api_sign_ins_per_second(app, email: str, count: int) -> float:
    client = app.test_client()
    start = time.perf_counter()
    for _ in range(count):
        response = client.post("/api/v1/sessions", json=dict(BODY, email=email))
        assert response.status_code == 201, response.get_data(as_text=True)
    return count / (time.perf_counter() - start)


def device_check_ms(app, raw: list[str], count: int) -> list[float]:
    """Time the per-request check (token → Device → User) for ``count`` different sessions."""
    timings = []
    for token in raw[2:count + 2]:  # the first people signed in above (devices may have ended)
        with app.test_request_context("/api/v1/me", headers={"Authorization": f"Bearer {token}"}):
            start = time.perf_counter()
            user = load_user_from_request(__import__("flask").request)
            timings.append((time.perf_counter() - start) * 1000)
            assert user is not None
            db.session.remove()
    return timings


def argon2_ms(app, count: int = 20) -> float:
    with app.app_context():
        stored = passwords.hasher().hash(PASSWORD)
        start = time.perf_counter()
        for _ in range(count):
            passwords.hasher().verify(stored, PASSWORD)
        return (time.perf_counter() - start) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--sign-ins", type=int, default=60)
    parser.add_argument("--checks", type=int, default=5_000)
    report.add_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/bench.db", "SECRET_KEY": "bench",
                          "RATELIMIT_ENABLED": False, "MAIL_SERVER": None})
        cfg = app.config
        params = f"m={cfg['ARGON2_MEMORY_COST']}, t={cfg['ARGON2_TIME_COST']}, p={cfg['ARGON2_PARALLELISM']}"
        start = time.perf_counter()
        email, raw = build(app, args.users)
        built = time.perf_counter() - start
        one_hash = argon2_ms(app)
        single = sign_ins_per_second(app, email, args.sign_ins, 1)
        double = sign_ins_per_second(app, email, args.sign_ins, 2)
        api = api_sign_ins_per_second(app, email, args.sign_ins // 2)
        checks = device_check_ms(app, raw, min(args.checks, len(raw)))
        with app.app_context():
            db.engine.dispose()
    checks.sort()
    result = {
        "argon2": params,
        "users": args.users,
        "build_s": round(built, 2),
        "argon2_verify_ms": round(one_hash, 1),
        "sign_ins_per_s_1_thread": round(single, 1),
        "sign_ins_per_s_2_threads": round(double, 1),
        "api_sign_ins_per_s_1_thread": round(api, 1),
        "device_check_ms_median": round(statistics.median(checks), 3),
        "device_check_ms_p95": round(checks[int(len(checks) * 0.95)], 3),
        "device_check_ms_mean": round(statistics.fmean(checks), 3),
    }
    rows = [
        ("argon2id parameters", params, ""),
        (f"data set ({args.users:,} people + devices)", f"{built:.2f} s", ""),
        ("one argon2 verification", f"{one_hash:.1f} ms", ""),
        ("sign-ins/s, 1 thread (= per core)", f"{single:.1f}", "Keycloak ~15/vCPU"),
        ("sign-ins/s, 2 threads", f"{double:.1f}", "2 cores"),
        ("API sign-ins/s (POST /api/v1/sessions)", f"{api:.1f}", "1 thread"),
        ("device check, median", f"{result['device_check_ms_median']:.3f} ms", "budget < 1 ms"),
        ("device check, p95", f"{result['device_check_ms_p95']:.3f} ms", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>16}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>16}  {note}")
    print(json.dumps({"bench": "auth", **result}))
    report.write(args.json_path, "auth", "sqlite", [
        report.figure("argon2_verify_ms", f"one argon2id verification ({params})",
                      result["argon2_verify_ms"], "ms"),
        report.figure("sign_ins_per_s_1_thread", "sign-ins/s, 1 thread (Keycloak ~15/vCPU)",
                      result["sign_ins_per_s_1_thread"], "/s", better="higher", floor=15,
                      floor_name="Keycloak per vCPU"),
        report.figure("sign_ins_per_s_2_threads", "sign-ins/s, 2 threads",
                      result["sign_ins_per_s_2_threads"], "/s", better="higher"),
        report.figure("api_sign_ins_per_s_1_thread", "API sign-ins/s (POST /api/v1/sessions)",
                      result["api_sign_ins_per_s_1_thread"], "/s", better="higher"),
        report.figure("device_check_ms_median", "per-request device check, median",
                      result["device_check_ms_median"], "ms", budget=1.0),
    ], size={"users": args.users, "sign_ins": args.sign_ins, "checks": args.checks}, raw=result)


if __name__ == "__main__":
    main()
