"""Issue 11, finding 8: does a failed sign-in take longer for a known e-mail than an unknown one?

    .venv/bin/python tests/bench/bench_login_timing.py [--tries 300] [--database-url URL]

Builds its own database (a temporary SQLite file, or PostgreSQL with --database-url or
PORTAL_BENCH_DATABASE_URL) with one account and one person, then sends wrong-password
``POST /login`` requests through the Flask test client with the real argon2id settings
(m=19456, t=2, p=1), alternating a known and an unknown address (which one goes first
alternates too), and reports the median of the per-pair differences (known minus unknown) and
of each side. Budget: the absolute median difference well under 5 ms. Prints a table and one
JSON line. Not a timed test: figures depend on the machine and its load.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Base  # noqa: E402
from portal.services import accounts  # noqa: E402
from tests.bench import figures as report  # noqa: E402

PASSWORD = "correct horse battery staple"
KNOWN = "known.person@bench.example.com"
UNKNOWN = "nobody.{n}@bench.example.com"
BUDGET_MS = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=300, help="pairs of sign-ins")
    parser.add_argument("--database-url", default=os.environ.get("PORTAL_BENCH_DATABASE_URL"))
    report.add_argument(parser)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{tmp.name}/bench.db"
    app = create_app({
        "DATABASE_URL": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
        # The per-address rate limit would answer 429 after 30 tries; the per-person throttle
        # stays as in production (a throttled person's wrong password fails the same way).
        "RATELIMIT_ENABLED": False, "BASE_URL": "http://bench.example",
    })
    with app.app_context():
        if url.startswith("postgresql"):
            Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        accounts.create_account("Bench", admin_email=KNOWN, password=PASSWORD)
        db.session.commit()
    client = app.test_client()

    def attempt(email: str) -> float:
        start = time.perf_counter()
        response = client.post("/login", data={"email": email, "password": "wrong password 1"})
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, response.status_code  # the form again, with the error
        return elapsed * 1000

    for n in range(10):  # warm-up: caches, the dummy hash, connections
        attempt(KNOWN)
        attempt(UNKNOWN.format(n=f"w{n}"))
    known, unknown, diffs = [], [], []
    for n in range(args.tries):
        if n % 2:
            k = attempt(KNOWN)
            u = attempt(UNKNOWN.format(n=n))
        else:
            u = attempt(UNKNOWN.format(n=n))
            k = attempt(KNOWN)
        known.append(k)
        unknown.append(u)
        diffs.append(k - u)
    median_diff = statistics.median(diffs)
    result = {
        "bench": "login_timing",
        "database": url.split(":", 1)[0],
        "tries": args.tries,
        "known_median_ms": round(statistics.median(known), 2),
        "unknown_median_ms": round(statistics.median(unknown), 2),
        "median_difference_ms": round(median_diff, 2),
        "budget_ms": BUDGET_MS,
        "ok": abs(median_diff) < BUDGET_MS,
    }
    print(f"Failed sign-in, known vs unknown e-mail, {args.tries} interleaved pairs, "
          f"{result['database']}, load average {os.getloadavg()[0]:.1f}")
    print(f"  known e-mail    median {result['known_median_ms']:8.2f} ms")
    print(f"  unknown e-mail  median {result['unknown_median_ms']:8.2f} ms")
    print(f"  difference      median {result['median_difference_ms']:8.2f} ms "
          f"(budget |d| < {BUDGET_MS:.0f} ms: {'ok' if result['ok'] else 'MISSED'})")
    print(json.dumps(result))
    report.write(args.json_path, "login_timing", report.database_name(args.database_url), [
        report.figure("known_median_ms", "failed sign-in, known e-mail (argon2id)",
                      result["known_median_ms"], "ms"),
        report.figure("unknown_median_ms", "failed sign-in, unknown e-mail",
                      result["unknown_median_ms"], "ms"),
        report.figure("abs_median_difference_ms", "|known - unknown|, median of pairs",
                      abs(result["median_difference_ms"]), "ms", budget=BUDGET_MS),
    ], size={"tries": args.tries}, raw=result)
    with app.app_context():
        db.engine.dispose()
    tmp.cleanup()
    return 0  # a figure, not a verdict: like the other benches, MISSED is printed


if __name__ == "__main__":
    sys.exit(main())
