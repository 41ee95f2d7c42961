"""Benchmark: CSV preview, import and export of 100,000 users in one account.

Run: .venv/bin/python tests/bench/bench_csv.py [--rows N] [--profile import|preview|export]
         [--database-url URL | --pg]
With ``--database-url`` (a PostgreSQL server; ``--pg`` takes $PORTAL_TEST_DATABASE_URL) the same
measurements run on PostgreSQL, in a database of their own created there and dropped after;
its targets are absolute: import >= 25,000 rows/s, export >= 150,000 rows/s.
Budgets (DESIGN §5b): preview < 2 s; import >= 40,000 rows/s end to end with peak RSS < 300 MB;
export >= 300,000 rows/s with flat memory. Each measurement runs in a forked child process on
one SQLite file, so its peak RSS (getrusage) is its own.

Issue 13's targets are ratios to a floor measured in the same run: a hand-written ``sqlite3`` +
``csv`` import of the same file into the same schema (users, memberships with their sort keys,
groups, group memberships; none of the product's checks, tokens, outbox, audit) and a
hand-written ``sqlite3`` + ``csv`` export of the same columns. Targets: import within 1.4x of
its floor, export within 1.3x.
"""
import argparse
import json
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Base  # noqa: E402
from portal.services import accounts  # noqa: E402
from portal.services import csv_export  # noqa: E402
from portal.services import csv_check  # noqa: E402
from portal.services import csv_import  # noqa: E402
from tests.bench import figures as report  # noqa: E402

FIRST = ["Ana", "Björn", "Chloé", "Dmitri", "Emeka", "Fatima", "Grégoire", "Hana", "Iñaki",
         "Jun", "Kofi", "Léa", "Mateus", "Nadia", "Oskar", "Priya", "Quentin", "Rūta", "Søren",
         "Tomás", "Zoë", "Ævar", "Łucja", "Đorđe", "Şule"]
LAST = ["Álvarez", "Berg", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Huang",
        "Ivanova", "Jensen", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrov",
        "Rossi", "Šimić", "Ørsted", "Văn", "Żak", "Grünwald"]
GROUPS = [f"Team {n:02d}" for n in range(1, 51)]
BUDGETS = {"preview_s": 2.0, "import_rows_per_s": 40_000, "import_peak_rss_mb": 300,
           "export_rows_per_s": 300_000, "import_floor_ratio": 1.4, "export_floor_ratio": 1.3}
PG_BUDGETS = {"preview_s": 2.0, "import_rows_per_s": 25_000, "import_peak_rss_mb": 300,
              "export_rows_per_s": 150_000}


def fixture(rows: int, seed: int = 1) -> bytes:
    """Return a deterministic CSV: non-ASCII names, 0-3 of 50 groups per row."""
    rng = random.Random(seed)
    lines = ["Full Name,Email,Groups"]
    for number in range(rows):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        groups = "; ".join(rng.sample(GROUPS, rng.randint(0, 3)))
        email = f"user{number:06d}.{rng.randrange(10**6)}@example{number % 7}.org"
        lines.append(f'"{first} {last}",{email},"{groups}"')
    return ("\r\n".join(lines) + "\r\n").encode()


def make_app(path: Path | str):
    """The app on the SQLite file ``path``, or on the database of the URL ``path``."""
    return create_app({
        "DATABASE_URL": path if isinstance(path, str) else f"sqlite:///{path}",
        "SECRET_KEY": "bench",
        "BASE_URL": "http://portal.example",
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 64,
        "IMPORT_MAX_ROWS": 1_000_000,
        "WTF_CSRF_ENABLED": False,  # the HTTP measurement signs in with a bare test client
    })


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_of(pid: int, children: bool = False) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: its reaped children
    return ticks / os.sysconf("SC_CLK_TCK")


def server_cpu_s() -> float | None:
    """CPU seconds the PostgreSQL server of the app's database has used so far: its postmaster,
    every live child (backends, parallel workers, autovacuum) and the children it reaped.

    On a shared machine the wall clock counts other people's work too; the server's CPU
    beside the client's (time.process_time) says what the import itself cost. None when the
    server does not run on this machine (or its files are not readable).
    """
    import sqlalchemy as sa

    if db.engine.dialect.name != "postgresql":
        return None
    try:
        with db.engine.connect() as conn:
            data_dir = conn.scalar(sa.text("SELECT current_setting('data_directory')"))
        postmaster = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
        total = _cpu_of(postmaster, children=True)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                continue  # a process that ended meanwhile
        return total
    except (OSError, ValueError, sa.exc.SQLAlchemyError):
        return None


def in_child(func, *args):
    """Run func(*args) in a forked process and return its result (a dict)."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()

    def target():
        try:
            child.send(func(*args))
        except BaseException as error:  # the parent must not wait for ever
            child.send({"error": f"{type(error).__name__}: {error}"})
            raise

    process = ctx.Process(target=target)
    process.start()
    result = parent.recv()
    process.join()
    if "error" in result:
        raise SystemExit(f"{func.__name__} failed: {result['error']}")
    return result


def profiled(name: str, wanted: str | None, func):
    """figures.profiled, its HTML report in bench-results/csv-NAME.html as well."""
    return report.profiled(name, wanted, func, interval=0.0005,
                           html=Path("bench-results") / f"csv-{name}.html")


def server_figures(what: str, before: float | None, client_cpu: float, rows: int) -> dict:
    """The server's CPU seconds since ``before`` and the rows per CPU second of client and
    server together: what the wall clock would show on a quiet machine of these cores (for
    the import, one backend working alone; COPY's parallel workers may share an export)."""
    after = server_cpu_s()
    if before is None or after is None:
        return {}
    server = after - before
    return {f"{what}_server_cpu_s": server,
            f"{what}_rows_per_cpu_s": rows / max(server + client_cpu, 1e-9)}


def measure_preview(db_path: Path, data: bytes, profile: str | None) -> dict:
    app = make_app(db_path)
    with app.app_context():
        actor = accounts.operator("Bench")
        start, cpu = time.perf_counter(), time.process_time()
        preview = profiled("preview", profile,
                           lambda: csv_check.preview_csv(actor, data))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        return {"preview_s": seconds, "preview_cpu_s": cpu, "preview_rows": len(preview.rows),
                "preview_new": preview.counts[csv_check.NEW], "preview_peak_rss_mb": peak_rss_mb()}


def measure_import(db_path: Path, data: bytes, rows: int, profile: str | None) -> dict:
    app = make_app(db_path)
    with app.app_context():
        actor = accounts.operator("Bench")
        before = peak_rss_mb()
        server = server_cpu_s()
        start, cpu = time.perf_counter(), time.process_time()
        result = profiled("import", profile,
                          lambda: csv_import.import_csv(actor, data, source="bench"))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert result.imported == rows, result
        return {"import_s": seconds, "import_rows_per_s": rows / seconds, "import_cpu_s": cpu,
                "import_peak_rss_mb": peak_rss_mb(), "rss_before_import_mb": before,
                "import_summary": result.summary(), **server_figures("import", server, cpu,
                                                                     rows)}


def _export_once(actor) -> tuple[int, int]:
    export = csv_export.export_users(actor)
    size = sum(len(chunk) for chunk in export.chunks)
    return export.count, size


def measure_export(db_path: Path, rows: int, profile: str | None) -> dict:
    app = make_app(db_path)
    with app.app_context():
        actor = accounts.operator("Bench")
        _export_once(actor)  # warm the page cache, as a second download would find it
        server = server_cpu_s()
        start, cpu = time.perf_counter(), time.process_time()
        count, size = profiled("export", profile, lambda: _export_once(actor))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        on_server = server_figures("export", server, cpu, count)
        assert count == rows + 1, count  # the imported users and the admin
        tracemalloc.start()
        _export_once(actor)
        _current, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {"export_s": seconds, "export_rows_per_s": count / seconds, "export_cpu_s": cpu,
                "export_mb": size / 1e6, "export_traced_peak_mb": traced_peak / 1e6,
                **on_server}


def measure_export_http(db_path: Path) -> dict:
    """The same export through the Flask test client, streamed like a download."""
    app = make_app(db_path)
    # No app context around the requests: each request gets its own, as under a server.
    client = app.test_client()
    client.post("/login", data={"email": "bench@example.com", "password": PASSWORD})
    start = time.perf_counter()
    response = client.get("/admin/participants/users/export", buffered=False)
    assert response.status_code == 200, response.status_code
    lines = sum(chunk.count(b"\r\n") for chunk in response.response) - 1
    response.close()
    seconds = time.perf_counter() - start
    return {"export_http_s": seconds, "export_http_rows_per_s": lines / seconds}


PASSWORD = "correct horse battery staple"


FLOOR_SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    phone TEXT, last_seen_at TEXT, created_at TEXT NOT NULL);
CREATE TABLE memberships (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id), role TEXT NOT NULL,
    invite_state TEXT NOT NULL, created_at TEXT NOT NULL, deleted_at TEXT, sort_last_seen TEXT,
    UNIQUE (account_id, user_id));
CREATE TABLE groups (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, name TEXT NOT NULL,
    name_key TEXT NOT NULL, UNIQUE (account_id, name_key));
CREATE TABLE group_members (group_id INTEGER NOT NULL, membership_id INTEGER NOT NULL,
    PRIMARY KEY (membership_id, group_id));
"""


def measure_floor_import(db_path: Path, data: bytes, rows: int) -> dict:
    """The floor: the same file by hand with sqlite3 and csv, into the same tables with only
    their keys (no checks, no secondary indexes, no triggers, no tokens, outbox or audit)."""
    import csv
    import io
    import sqlite3

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.executescript(FLOOR_SCHEMA)
    start, cpu = time.perf_counter(), time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    now = "2026-12-01 00:00:00.000000"
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    next(reader)
    people, pairs, groups = [], [], {}
    for number, (name, email, cell) in enumerate(reader, start=1):
        people.append((number, email.lower(), name, now))
        for group in cell.split(";"):
            group = group.strip()
            if group:
                pairs.append((groups.setdefault(group.lower(), len(groups) + 1), number))
    conn.executemany("INSERT INTO users (id, email, name, created_at) VALUES (?, ?, ?, ?)",
                     people)
    conn.executemany("INSERT INTO memberships (id, account_id, user_id, role, invite_state, "
                     "created_at) VALUES (?, 1, ?, 'member', 'invited', ?)",
                     [(number, number, now) for number, *_ in people])
    conn.executemany("INSERT INTO groups (id, account_id, name, name_key) VALUES (?, 1, ?, ?)",
                     [(gid, key, key) for key, gid in groups.items()])
    conn.executemany("INSERT INTO group_members (group_id, membership_id) VALUES (?, ?)",
                     pairs)
    conn.execute("COMMIT")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    conn.close()
    return {"floor_import_s": seconds, "floor_import_rows_per_s": rows / seconds,
            "floor_import_cpu_s": cpu}


def measure_floor_same_writes(db_path: Path, data: bytes, rows: int) -> dict:
    """A second floor: the same file by hand with sqlite3 and csv into the product's own schema
    (its indexes and search triggers, on the connection settings the product uses), writing
    what the import writes: users, memberships with their sort keys, groups, group
    memberships, an invitation token (random, SHA-256) and an e-mail (JSON context) each, one
    audit event. None of the product's checks (e-mail syntax, names, duplicates, existing
    people), staging, reports or history."""
    import csv
    import hashlib
    import io
    import secrets
    import sqlite3

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA mmap_size=268435456")
    conn.execute("PRAGMA temp_store=MEMORY")
    start, cpu = time.perf_counter(), time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    now = "2026-12-01 00:00:00.000000"
    first_user = conn.execute("SELECT coalesce(max(id), 0) FROM users").fetchone()[0] + 1
    first_member = conn.execute("SELECT coalesce(max(id), 0) FROM memberships").fetchone()[0] + 1
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    next(reader)
    people, members, pairs, groups, tokens, mails = [], [], [], {}, [], []
    for number, (name, email, cell) in enumerate(reader):
        user_id, member_id, email = first_user + number, first_member + number, email.lower()
        people.append((user_id, email, name, now))
        members.append((member_id, user_id, now, name.lower(), email))
        for group in cell.split(";"):
            group = group.strip()
            if group:
                pairs.append((groups.setdefault(group.lower(), (len(groups) + 1, group))[0],
                              member_id, now))
        digest = hashlib.sha256(secrets.token_urlsafe(33).encode()).hexdigest()
        tokens.append((user_id, digest, now))
        mails.append((user_id, member_id, email, json.dumps({"name": name, "token": digest})))

    def insert(table: str, columns: str, rows: list[tuple], order: str = "rowid") -> None:
        # Through a temporary table and one INSERT ... SELECT, as SQLite wants it: row by row,
        # each INSERT is a statement of its own, with its own statement journal and its own
        # flush of the search index (a naive executemany took 2x the product's time).
        conn.execute(f"CREATE TEMP TABLE stage_{table} AS SELECT {columns} FROM {table} WHERE 0")
        marks = ", ".join("?" * len(rows[0]))
        conn.executemany(f"INSERT INTO stage_{table} VALUES ({marks})", rows)
        conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM stage_{table} "
                     f"ORDER BY {order}")

    insert("users", "id, email, name, must_change_password, failed_logins, version, created_at",
           [(user_id, email, name, 0, 0, 1, now) for user_id, email, name, now in people])
    # The invitation's expiry too, as the product writes it (issue 15: invitation states).
    insert("memberships", "id, account_id, user_id, role, invite_state, invited_by_id, "
           "created_at, sort_name, sort_email, invite_expires_at",
           [(member_id, 1, user_id, "member", "invited", 1, now, key, email, now)
            for member_id, user_id, now, key, email in members])
    insert("groups", "id, account_id, name, name_key, created_at",
           [(gid, 1, name, key, now) for key, (gid, name) in groups.items()])
    insert("group_members", "group_id, membership_id, created_at", pairs)
    insert("action_tokens", "user_id, account_id, purpose, token_hash, password_stamp, "
           "expires_at, created_at",
           [(user_id, 1, "invite", digest, "", now, now) for user_id, digest, now in tokens],
           order="token_hash")  # random digests in index order: far cheaper for the B-tree
    insert("outbox_messages", "account_id, user_id, membership_id, kind, to_addr, subject, "
           "context, state, attempts, next_attempt_at, created_at",
           [(1, user_id, member_id, "invite", email, "Invitation", context, "pending", 0, now,
             now) for user_id, member_id, email, context in mails])
    conn.execute("INSERT INTO audit_events (account_id, action, details, created_at) "
                 "VALUES (1, 'users.imported', '{}', ?)", (now,))
    conn.execute("COMMIT")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    conn.close()
    return {"floor_same_import_s": seconds, "floor_same_import_rows_per_s": rows / seconds,
            "floor_same_import_cpu_s": cpu}


def measure_floor_export(db_path: Path) -> dict:
    """The floor: the export's columns by hand, with sqlite3 and csv only, into memory."""
    import csv
    import io
    import sqlite3

    start, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(db_path)
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(csv_export.COLUMNS)
    count = size = 0
    cursor = conn.execute(
        "SELECT u.name, u.email, coalesce(u.phone, ''), coalesce((SELECT group_concat(g.name, "
        "'; ') FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE "
        "gm.membership_id = m.id), ''), m.invite_state, coalesce(substr(m.sort_last_seen, 1, "
        "16), ''), substr(m.created_at, 1, 16) FROM memberships m JOIN users u ON u.id = "
        "m.user_id WHERE m.deleted_at IS NULL ORDER BY m.id")
    while batch := cursor.fetchmany(2000):
        writer.writerows(batch)
        count += len(batch)
        size += len(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
    conn.close()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"floor_export_s": seconds, "floor_export_rows_per_s": count / seconds,
            "floor_export_cpu_s": cpu}


def pg_database(server_url: str, name: str, drop: bool = False) -> str:
    """Create (or drop) database ``name`` on the PostgreSQL server of ``server_url``."""
    import sqlalchemy as sa

    server = sa.engine.make_url(server_url)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def main_pg(args, data: bytes, figures: dict) -> None:
    """The same measurements on PostgreSQL (no hand-written floor: its targets are absolute)."""
    name = f"bench_csv_{os.getpid()}"
    url = pg_database(args.database_url, name)
    try:
        setup(url)
        figures.update(in_child(measure_preview, url, data, args.profile))
        figures.update(in_child(measure_import, url, data, args.rows, args.profile))
        figures.update(in_child(measure_export, url, args.rows, args.profile))
        figures.update(in_child(measure_export_http, url))
    finally:
        pg_database(args.database_url, name, drop=True)
    figures["load_average"] = os.getloadavg()[0]
    print(f"CSV benchmark, {args.rows:,} rows ({figures['file_mb']:.1f} MB), PostgreSQL, "
          f"load average {figures['load_average']:.1f} on {os.cpu_count()} CPUs")
    print(f"{'what':28} {'measured':46} budget")
    lines = service_lines(figures, PG_BUDGETS) + server_lines(figures)
    for what, measured, budget in lines + [
        ("export through HTTP", f"{figures['export_http_rows_per_s']:,.0f} rows/s "
         f"({figures['export_http_s']:.2f} s)", ">= 150,000 rows/s"),
    ]:
        print(f"{what:28} {measured:46} {budget}")
    print(json.dumps({"bench": "csv", "database": "postgresql", **figures,
                      "budgets": PG_BUDGETS}))
    report.write(args.json_path, "csv", "postgresql", json_figures(figures, PG_BUDGETS),
                 size={"rows": args.rows}, raw=figures)


def server_lines(figures: dict) -> list[tuple[str, str, str]]:
    """The PostgreSQL server's CPU beside the client's (when the server runs here)."""
    lines = []
    for what in ("import", "export"):
        if f"{what}_server_cpu_s" in figures:
            lines.append((f"{what}, CPU client + server",
                          f"{figures[f'{what}_rows_per_cpu_s']:,.0f} rows/CPU-s (client "
                          f"{figures[f'{what}_cpu_s']:.2f} s + server "
                          f"{figures[f'{what}_server_cpu_s']:.2f} s)",
                          f">= {PG_BUDGETS[f'{what}_rows_per_s']:,} rows/s"))
    return lines


def service_lines(figures: dict, budgets: dict) -> list[tuple[str, str, str]]:
    """The table's lines of the product's own figures (what, measured, budget)."""
    return [
        ("preview of the file", f"{figures['preview_s']:.2f} s "
         f"(CPU {figures['preview_cpu_s']:.2f} s)", f"< {budgets['preview_s']:g} s"),
        ("import, end to end", f"{figures['import_rows_per_s']:,.0f} rows/s "
         f"({figures['import_s']:.2f} s, CPU {figures['import_cpu_s']:.2f} s)",
         f">= {budgets['import_rows_per_s']:,} rows/s"),
        ("import, peak RSS", f"{figures['import_peak_rss_mb']:.0f} MB",
         f"< {budgets['import_peak_rss_mb']} MB"),
        ("export (service)", f"{figures['export_rows_per_s']:,.0f} rows/s "
         f"({figures['export_s']:.2f} s, CPU {figures['export_cpu_s']:.2f} s)",
         f">= {budgets['export_rows_per_s']:,} rows/s"),
        ("export, traced peak memory", f"{figures['export_traced_peak_mb']:.1f} MB", "flat"),
    ]


def json_figures(figures: dict, budgets: dict) -> list[dict]:
    """The --json figures (tests/bench/figures.py); SQLite's with its floors beside them."""
    floor = "sqlite3 + csv by hand"
    floors = "floor_import_rows_per_s" in figures

    def rate(key: str, name: str, floor_key: str) -> dict:
        return report.figure(key, name, round(figures[key]), "rows/s", better="higher",
                             budget=budgets["import_rows_per_s" if "import" in key
                                            else "export_rows_per_s"],
                             floor=round(figures[floor_key]) if floors else None,
                             floor_name=floor if floors else None)

    def ratio(key: str, name: str, **floor_of) -> dict:
        return report.figure(key, name, round(figures[key], 2), "x", budget=budgets.get(key),
                             **floor_of)

    chosen = [
        report.figure("preview_s", f"CSV preview of {figures['rows']:,} rows",
                      round(figures["preview_s"], 3), "s", budget=budgets["preview_s"]),
        rate("import_rows_per_s", "CSV import, end to end", "floor_import_rows_per_s"),
    ]
    if floors:
        chosen += [
            ratio("import_floor_ratio", "CSV import time / floor's"),
            ratio("import_same_floor_ratio", "CSV import time / same-writes floor's",
                  floor=round(figures["floor_same_import_rows_per_s"]),
                  floor_name="sqlite3 by hand, product schema, tokens, e-mails"),
        ]
    chosen += [
        report.figure("import_peak_rss_mb", "CSV import, peak RSS",
                      round(figures["import_peak_rss_mb"]), "MB",
                      budget=budgets["import_peak_rss_mb"]),
        rate("export_rows_per_s", "CSV export (service)", "floor_export_rows_per_s"),
    ]
    if floors:
        chosen.append(ratio("export_floor_ratio", "CSV export time / floor's"))
    chosen.append(report.figure("export_http_rows_per_s", "CSV export through HTTP",
                                round(figures["export_http_rows_per_s"]), "rows/s",
                                better="higher", budget=budgets["export_rows_per_s"]))
    return chosen


def setup(db_path: Path | str) -> None:
    app = make_app(db_path)
    with app.app_context():
        Base.metadata.create_all(db.engine)
        accounts.create_account("Bench", admin_email="bench@example.com", admin_name="Bench Admin",
                                password=PASSWORD)
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--profile", choices=["preview", "import", "export"])
    report.add_argument(parser)
    parser.add_argument("--database-url", metavar="URL",
                        help="measure on this PostgreSQL server instead of SQLite")
    parser.add_argument("--pg", action="store_true",
                        help="measure on $PORTAL_TEST_DATABASE_URL's PostgreSQL server")
    args = parser.parse_args()
    if args.pg and not args.database_url:
        args.database_url = os.environ.get("PORTAL_TEST_DATABASE_URL")
        if not args.database_url:
            parser.error("--pg needs PORTAL_TEST_DATABASE_URL (source .ci/pg.sh && pg_start)")
    data = fixture(args.rows)
    figures = {"rows": args.rows, "file_mb": len(data) / 1e6}
    if args.database_url:
        main_pg(args, data, figures)
        return
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        setup(db_path)
        figures.update(in_child(measure_preview, db_path, data, args.profile))
        figures.update(in_child(measure_import, db_path, data, args.rows, args.profile))
        figures.update(in_child(measure_export, db_path, args.rows, args.profile))
        figures.update(in_child(measure_export_http, db_path))
        # The floors, in the same run, on a second database of the same schema.
        floor_path = Path(tmp) / "floor.db"
        figures.update(in_child(measure_floor_import, floor_path, data, args.rows))
        figures.update(in_child(measure_floor_export, floor_path))
        same_path = Path(tmp) / "same.db"
        setup(same_path)
        figures.update(in_child(measure_floor_same_writes, same_path, data, args.rows))
    figures["import_floor_ratio"] = (figures["floor_import_rows_per_s"]
                                     / figures["import_rows_per_s"])
    figures["export_floor_ratio"] = (figures["floor_export_rows_per_s"]
                                     / figures["export_rows_per_s"])
    # The same ratios in CPU seconds, steadier on a shared machine than the wall clock.
    figures["import_floor_ratio_cpu"] = figures["import_cpu_s"] / figures["floor_import_cpu_s"]
    # Against the floor that writes what the product writes (its schema, tokens, e-mails).
    figures["import_same_floor_ratio"] = (figures["floor_same_import_rows_per_s"]
                                          / figures["import_rows_per_s"])
    figures["import_same_floor_ratio_cpu"] = (figures["import_cpu_s"]
                                              / figures["floor_same_import_cpu_s"])
    figures["export_floor_ratio_cpu"] = figures["export_cpu_s"] / figures["floor_export_cpu_s"]
    # CPU seconds beside the wall clock: on a shared machine the wall clock counts other
    # people's work too (the load average is printed with the table).
    table = service_lines(figures, BUDGETS)
    table += [
        ("import floor (sqlite3 + csv)", f"{figures['floor_import_rows_per_s']:,.0f} rows/s "
         f"({figures['floor_import_s']:.2f} s, CPU {figures['floor_import_cpu_s']:.2f} s)", ""),
        ("import / floor", f"{figures['import_floor_ratio']:.2f}x the time "
         f"(CPU {figures['import_floor_ratio_cpu']:.2f}x)", "<= 1.4x"),
        ("import floor, same writes", f"{figures['floor_same_import_rows_per_s']:,.0f} rows/s "
         f"({figures['floor_same_import_s']:.2f} s, CPU {figures['floor_same_import_cpu_s']:.2f} s)",
         ""),
        ("import / same-writes floor", f"{figures['import_same_floor_ratio']:.2f}x the time "
         f"(CPU {figures['import_same_floor_ratio_cpu']:.2f}x)", ""),
        ("export floor (sqlite3 + csv)", f"{figures['floor_export_rows_per_s']:,.0f} rows/s "
         f"({figures['floor_export_s']:.2f} s, CPU {figures['floor_export_cpu_s']:.2f} s)", ""),
        ("export / floor", f"{figures['export_floor_ratio']:.2f}x the time "
         f"(CPU {figures['export_floor_ratio_cpu']:.2f}x)", "<= 1.3x"),
    ]
    if "export_http_rows_per_s" in figures:
        table.append(("export through HTTP", f"{figures['export_http_rows_per_s']:,.0f} rows/s "
                      f"({figures['export_http_s']:.2f} s)", ">= 300,000 rows/s"))
    figures["load_average"] = os.getloadavg()[0]
    print(f"CSV benchmark, {args.rows:,} rows ({figures['file_mb']:.1f} MB), SQLite, "
          f"load average {figures['load_average']:.1f} on {os.cpu_count()} CPUs")
    print(f"{'what':28} {'measured':46} budget")
    for what, measured, budget in table:
        print(f"{what:28} {measured:46} {budget}")
    print(json.dumps({"bench": "csv", **figures, "budgets": BUDGETS}))
    report.write(args.json_path, "csv", "sqlite", json_figures(figures, BUDGETS),
                 size={"rows": args.rows}, raw=figures)


if __name__ == "__main__":
    main()
