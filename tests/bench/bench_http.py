"""Benchmark: HTTP load through gunicorn on the Users list and user details at 100,000 users.

    .venv/bin/python tests/bench/bench_http.py [--users 100000] [--clients 20] [--workers 4]
        [--threads N] [--seconds 20] [--database-url URL] [--profile DIR] [--json PATH]

Builds the Users list bench's data set (tests/bench/bench_users_list.py: one account, 50 groups)
plus one admin per client, starts gunicorn as `make run` does (gunicorn.conf.py; ``--workers``,
and ``--threads`` when given, override it) on a free loopback port, signs every client in
through the real login page, then runs ``--clients`` concurrent clients (threads, a
``requests.Session`` each, keep-alive) for a bounded ``--seconds``: each request is, at
random, a page of the Users list (page 1, a random page, a search, a group filter) or a
random user's details page, as full pages. Prints requests/s and p50/p95/p99 per kind and
overall, beside the same requests sent one at a time by a single client (no concurrency).
``--profile DIR`` records the gunicorn workers with py-spy during the load
(``pip install py-spy``) and prints the functions with the most samples.
"""
import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Account  # noqa: E402
from portal.models import Group  # noqa: E402
from portal.models import Membership  # noqa: E402
from portal.models import User  # noqa: E402
from portal.models import utcnow  # noqa: E402
from portal.services import passwords  # noqa: E402
from tests.bench import bench_users_list  # noqa: E402
from tests.bench import data  # noqa: E402
from tests.bench import figures as report  # noqa: E402

PASSWORD = bench_users_list.PASSWORD
CSRF = re.compile(r'"X-CSRFToken": "([^"]+)"')
BASE = "/admin/participants/users/"
# What a busy admin's browser asks for: budgets of single requests (DESIGN §5b: < 25 ms).
BUDGET_P50_MS = 25.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build(url: str, users: int, clients: int, reuse: bool = False) -> dict:
    """Migrate and fill the database; return what the clients need (admins, ids, a group).

    ``reuse``: a database this script filled before is taken as it is (profiling runs).
    """
    # Within `make bench` the Users list benchmark may have built this very data set already.
    key = bench_users_list.cache_key(users, 50)
    copied = not reuse and data.restore(key, url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "RATELIMIT_ENABLED": False,
                      "MAIL_SERVER": None})
    emails = [f"admin{n}@http.bench.example" for n in range(clients)]
    with app.app_context():
        from flask_migrate import upgrade

        account = None
        upgrade()  # a reused data set may predate the newest migrations
        if reuse or copied:
            account = db.session.scalar(sa.select(Account).where(Account.name == "Bench"))
        if account is None or copied:
            if account is None:
                account, _admin = bench_users_list.build(users, 50)
                account_id = account.id
                data.save(key, url, db.engine)  # before the admins below: the list's own data
                account = db.session.get(Account, account_id)
            now = utcnow()
            stored = passwords.hasher().hash(PASSWORD)
            db.session.execute(sa.insert(User), [
                {"email": email, "name": f"Admin {n}", "password_hash": stored,
                 "must_change_password": False, "failed_logins": 0, "version": 1,
                 "created_at": now}
                for n, email in enumerate(emails)])
            ids = db.session.scalars(sa.select(User.id).where(User.email.in_(emails))).all()
            db.session.execute(sa.insert(Membership), [
                {"account_id": account.id, "user_id": user_id, "role": "admin",
                 "invite_state": "active", "created_at": now} for user_id in ids])
            db.session.commit()
            if db.engine.dialect.name == "postgresql":
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql("VACUUM ANALYZE")
        members = db.session.scalars(sa.select(Membership.id).where(
            Membership.account_id == account.id, Membership.role == "member")).all()
        group_id = db.session.scalar(sa.select(sa.func.min(Group.id)).where(
            Group.account_id == account.id))
        db.session.remove()
        db.engine.dispose()
    return {"emails": emails, "members": members, "group_id": group_id}


class Server:
    """gunicorn serving wsgi:app as `make run` does, on a free loopback port."""

    def __init__(self, url: str, workers: int, threads: int | None, workdir: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [str(gunicorn), "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
                   "--access-logfile", str(workdir / "access.log"), "wsgi:app"]
        if threads is not None:
            command[1:1] = ["--threads", str(threads)]
        env = dict(os.environ, PORTAL_DATABASE_URL=url, PORTAL_SECRET_KEY="bench",
                   PORTAL_RATELIMIT_ENABLED="false", PORTAL_BASE_URL=self.base)
        env.pop("WEB_CONCURRENCY", None)
        self.log = (workdir / "gunicorn.log").open("w")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn ended: see {workdir / 'gunicorn.log'}")
            try:
                if requests.get(self.base + "/healthz", timeout=10).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.2)
        else:
            self.stop()
            raise SystemExit("gunicorn did not answer /healthz within 120 s")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True,
                             text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def sign_in(base: str, email: str) -> requests.Session:
    session = requests.Session()
    token = CSRF.search(session.get(base + "/login").text).group(1)
    response = session.post(base + "/login", data={"email": email, "password": PASSWORD},
                            headers={"X-CSRFToken": token}, allow_redirects=False)
    assert response.status_code == 302, (response.status_code, response.text[:300])
    return session


def requests_of(data: dict, users: int):
    """Return a function drawing the next (kind, path) of a client, from its own random."""
    pages = max(1, -(-users // 50))

    def draw(rng: random.Random) -> tuple[str, str]:
        roll = rng.random()
        if roll < 0.5:
            return "user details", f"{BASE}{rng.choice(data['members'])}"
        if roll < 0.7:
            return "users list", BASE
        if roll < 0.85:
            return "users list", f"{BASE}?page={rng.randint(1, pages)}"
        if roll < 0.95:
            return "users list", f"{BASE}?q={rng.choice(bench_users_list.LAST).lower()}"
        return "users list", f"{BASE}?group={data['group_id']}"

    return draw


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summarise(samples: dict[str, list[float]], seconds: float) -> dict:
    every = [ms for values in samples.values() for ms in values]
    result = {}
    for kind, values in [("all", every), *sorted(samples.items())]:
        if not values:
            continue
        result[kind] = {"requests": len(values), "per_s": round(len(values) / seconds, 1),
                        "p50_ms": round(percentile(values, 50), 1),
                        "p95_ms": round(percentile(values, 95), 1),
                        "p99_ms": round(percentile(values, 99), 1)}
    return result


def load(sessions: list[requests.Session], base: str, draw, seconds: float):
    """Run every session as a client for ``seconds``; return samples by kind and failures."""
    samples: dict[str, list[float]] = collections.defaultdict(list)
    failures: collections.Counter = collections.Counter()
    lock = threading.Lock()
    start_line = threading.Barrier(len(sessions) + 1)
    stop_at = [0.0]

    def client(number: int, session: requests.Session):
        rng = random.Random(number)
        mine: dict[str, list[float]] = collections.defaultdict(list)
        bad: collections.Counter = collections.Counter()
        start_line.wait()
        while time.perf_counter() < stop_at[0]:
            kind, path = draw(rng)
            began = time.perf_counter()
            try:
                response = session.get(base + path, timeout=60)
                ok = response.status_code == 200
            except requests.RequestException as error:
                ok, response = False, error
            elapsed = (time.perf_counter() - began) * 1000
            if ok:
                mine[kind].append(elapsed)
            else:
                bad[getattr(response, "status_code", type(response).__name__)] += 1
        with lock:
            for kind, values in mine.items():
                samples[kind].extend(values)
            failures.update(bad)

    threads = [threading.Thread(target=client, args=(n, s)) for n, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start_line.wait()
    for thread in threads:
        thread.join()
    return samples, failures, time.perf_counter() - began


def profile_workers(server: Server, seconds: float, out: Path) -> subprocess.Popen | None:
    """Start py-spy on every worker for ``seconds``; return the process (None without py-spy)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("--profile: py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return None
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([spy, "record", "--pid", str(server.process.pid), "--subprocesses",
                             "--duration", str(int(seconds)), "--rate", "200", "--format", "raw",
                             "--output", str(out / "py-spy.txt"), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_functions(collapsed: Path, count: int = 15) -> list[tuple[str, float, float]]:
    """Return (function, % of samples inside it, % with it on top) from py-spy's raw output."""
    inside, on_top = collections.Counter(), collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack:
            continue
        samples = int(number)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f
                  else f for f in stack.split(";")[1:]]  # the first frame is the process
        total += samples
        for frame in set(frames):
            inside[frame] += samples
        if frames:
            on_top[frames[-1]] += samples
    return [(name, 100 * inside[name] / total, 100 * on_top[name] / total)
            for name, _ in on_top.most_common(count)] if total else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per worker (default: gunicorn.conf.py's)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--single", type=int, default=100,
                        help="requests sent one at a time first, for the single-request figure")
    parser.add_argument("--database-url", default=os.environ.get("PORTAL_BENCH_DATABASE_URL"))
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR")
    parser.add_argument("--reuse", type=Path, default=None, metavar="SQLITE_FILE",
                        help="keep the SQLite data set in this file and reuse it when it is "
                             "there (with --database-url: reuse that database's)")
    report.add_argument(parser)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    sqlite_file = args.reuse.resolve() if args.reuse else workdir / "bench.db"
    url = args.database_url or f"sqlite:///{sqlite_file}"
    database = report.database_name(args.database_url)
    start = time.perf_counter()
    data = build(url, args.users, args.clients, reuse=args.reuse is not None)
    build_s = time.perf_counter() - start
    server = Server(url, args.workers, args.threads, workdir)
    try:
        draw = requests_of(data, args.users)
        sessions = [sign_in(server.base, email) for email in data["emails"]]
        # Warm-up: every worker imports, compiles its templates and opens its connections.
        load(sessions, server.base, draw, min(3.0, args.seconds))
        rng = random.Random(-1)
        single: dict[str, list[float]] = collections.defaultdict(list)
        for _ in range(args.single):
            kind, path = draw(rng)
            began = time.perf_counter()
            assert sessions[0].get(server.base + path).status_code == 200
            single[kind].append((time.perf_counter() - began) * 1000)
        spy = profile_workers(server, args.seconds, args.profile) if args.profile else None
        samples, failures, elapsed = load(sessions, server.base, draw, args.seconds)
        if spy is not None:
            spy.wait(timeout=args.seconds + 60)
    finally:
        server.stop()
    threads = args.threads or "gunicorn.conf.py's"
    loaded = summarise(samples, elapsed)
    alone = summarise(single, 1.0)
    result = {"users": args.users, "clients": args.clients, "workers": args.workers,
              "threads": args.threads, "seconds": round(elapsed, 1), "build_s": round(build_s, 1),
              "database": database, "loaded": loaded, "single": alone,
              "failures": dict(failures), "load_average": round(os.getloadavg()[0], 2)}
    print(f"HTTP load: gunicorn, {args.workers} workers x {threads} threads, {args.clients} "
          f"clients for {elapsed:.0f} s, {args.users:,} users, {database}; "
          f"load average {result['load_average']} on {os.cpu_count()} cores")
    print(f"{'requests':<34}{'count':>7}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for label, figures_by_kind in (("concurrent", loaded), ("one at a time", alone)):
        for kind, f in figures_by_kind.items():
            rate = f"{f['per_s']:>8.1f}" if label == "concurrent" else f"{'':>8}"
            print(f"{label + ', ' + kind:<34}{f['requests']:>7}{rate}{f['p50_ms']:>9.1f}"
                  f"{f['p95_ms']:>9.1f}{f['p99_ms']:>9.1f}")
    if failures:
        print(f"failed requests: {dict(failures)}")
    print(json.dumps({"bench": "http", **result}))
    if args.profile and (args.profile / "py-spy.txt").exists():
        print(f"py-spy, gunicorn workers under load ({args.profile / 'py-spy.txt'}):")
        print(f"{'% inside':>9}{'% on top':>9}  function")
        for name, inside, top in top_functions(args.profile / "py-spy.txt"):
            print(f"{inside:>9.1f}{top:>9.1f}  {name}")
    every = loaded.get("all", {"per_s": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None})
    label = f"{args.clients} clients, {args.workers} workers"
    report.write(args.json_path, "http", database, [
        report.figure("load_per_s", f"HTTP list + details, {label}: requests/s",
                      every["per_s"], "/s", better="higher"),
        report.figure("load_p50_ms", f"HTTP list + details, {label}: p50", every["p50_ms"], "ms"),
        report.figure("load_p95_ms", f"HTTP list + details, {label}: p95", every["p95_ms"], "ms"),
        report.figure("load_p99_ms", f"HTTP list + details, {label}: p99", every["p99_ms"], "ms"),
        report.figure("load_failed", f"HTTP list + details, {label}: failed requests",
                      sum(failures.values()), "", budget=1),
        report.figure("single_p50_ms", "HTTP list + details, one at a time: p50",
                      alone["all"]["p50_ms"], "ms", budget=BUDGET_P50_MS),
    ], size={"users": args.users, "clients": args.clients, "workers": args.workers,
             "threads": args.threads, "seconds": args.seconds}, raw=result)
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
