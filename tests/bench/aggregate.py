"""`make bench`: run every tests/bench/bench_*.py script on SQLite and PostgreSQL, print one table.

    .venv/bin/python tests/bench/aggregate.py [--size full|tiny] [--database-url URL]
        [--only users_list,deletion] [--json bench.json] [--out bench-results] [--jobs 1|2|3]

Each script runs in its own process with ``--json`` (tests/bench/figures.py) and the sizes of
``--size``; its own human output goes to ``<out>/<bench>-<database>.txt``. With
``--database-url`` (a PostgreSQL server the role may create databases on) every script that
supports PostgreSQL runs a second time, each in a fresh database of its own
(``bench_<name>_<pid>``, dropped afterwards). The table has one line per figure: its budget, the
SQLite and PostgreSQL figures with their verdicts, and the hand-written floor or peer measured
in the same run where the script has one. ``bench.json`` holds every script's document; the
last line gives the wall time against the 10 minutes `make bench` has.

``--jobs 2`` (the default) runs two scripts side by side, one a core: two workers take the
runs, SQLite's and PostgreSQL's alike, longest first (``COST``), each the next when it is free,
so neither is left with the long tail; each figure is measured beside one other script
(``--jobs 1`` measures them one after the other, twice as long). A data set one script built
is copied by the next that needs the same one (tests/bench/data.py, ``PORTAL_BENCH_CACHE``):
the HTTP load test and the Users list both load the same 100,000 users (the HTTP test, longer,
goes first); the copies are dropped at the end.

Sizes (``full``, what `make bench` runs): every figure at the size its budget names: the list
pages, Resend Invite, the purge, SCIM look-ups and the HTTP load at 100,000 users; the CSV
import/export at 100,000 rows; the group bulk adds at 10,000 of 100,000; the audit page at
1,000,000 events; fewer repetitions than each script's default (medians of 10-15) and 2,000
SCIM creates rather than 10,000. ``tiny`` is for tests/test_bench_aggregate.py: a few hundred
rows, seconds per script; its figures mean nothing.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE_ENV = "PORTAL_BENCH_CACHE"  # tests/bench/data.py: restore() and save()
ROOT = HERE.parents[1]

# Which scripts take --database-url (PostgreSQL); the others build their own SQLite file.
POSTGRESQL = {"users_list", "deletion", "groups", "scim", "login_timing", "http", "csv", "audit"}

# Each run's wall seconds at full size (make bench on a quiet machine, after the builders were
# made set-wise): the order the workers take them in, longest first. A run not listed: 60.
COST = {
    ("deletion", "sqlite"): 150, ("deletion", "postgresql"): 200, ("audit", "sqlite"): 110,
    ("audit", "postgresql"): 90, ("scim", "postgresql"): 150, ("scim", "sqlite"): 60,
    ("http", "postgresql"): 110, ("http", "sqlite"): 100, ("csv", "sqlite"): 130,
    ("csv", "postgresql"): 110, ("groups", "postgresql"): 80, ("groups", "sqlite"): 60,
    ("auth", "sqlite"): 70, ("login_timing", "postgresql"): 50, ("users_list", "postgresql"): 60,
    ("users_list", "sqlite"): 25, ("login_timing", "sqlite"): 16,
}

# Each script's options at each size, one row a script: option -> (full, tiny); None leaves the
# option out at that size (the script's own default).
SIZE_NAMES = ("full", "tiny")
OPTIONS: dict[str, dict[str, tuple[int | None, int | None]]] = {
    "users_list": {"--users": (100000, 300), "--runs": (15, 2)},
    "deletion": {"--users": (100000, 300), "--delete": (10000, 50), "--purge": (100000, 100)},
    "groups": {"--users": (100000, 300), "--repeat": (10, 2)},
    "scim": {"--users": (100000, 300), "--creates": (2000, 10), "--lookups": (100, 5)},
    "login_timing": {"--tries": (60, 3)},
    "auth": {"--users": (100000, 300), "--sign-ins": (30, 2), "--checks": (2000, 20)},
    "csv": {"--rows": (100000, 300)},
    "http": {"--users": (100000, 300), "--seconds": (15, 2), "--clients": (None, 4),
             "--workers": (None, 2)},
    "audit": {"--events": (1000000, 2000), "--people": (None, 100), "--repeat": (10, 2)},
}
# size -> script -> its command-line arguments.
SIZES: dict[str, dict[str, list[str]]] = {
    size: {name: [arg for option, values in options.items() if values[column] is not None
                  for arg in (option, str(values[column]))]
           for name, options in OPTIONS.items()}
    for column, size in enumerate(SIZE_NAMES)
}


def scripts() -> dict[str, Path]:
    """Return bench name -> script, for every tests/bench/bench_*.py."""
    return {path.stem.removeprefix("bench_"): path for path in sorted(HERE.glob("bench_*.py"))}


def fresh_database(server_url: str, name: str) -> str:
    """(Re)create database ``name`` on the server of ``server_url``; return its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        engine.dispose()


def drop_cached(server_url: str, cache: Path) -> None:
    """Drop the PostgreSQL copies of data sets the scripts kept under ``cache`` (data.save)."""
    import sqlalchemy as sa

    prefix = "bench_cache_" + re.sub(r"[^a-z0-9]+", "_", cache.name.lower()) + "_"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for name in conn.scalars(sa.text("SELECT datname FROM pg_database")).all():
                if name.startswith(prefix):
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        engine.dispose()


def run_one(name: str, script: Path, args: list[str], database_url: str | None, out: Path,
            timeout: float, cache: Path | None = None) -> dict:
    """Run one script; return its --json document, or one saying why there is none."""
    database = "postgresql" if database_url else "sqlite"
    log = out / f"{name}-{database}.txt"
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "figures.json"
        command = [sys.executable, str(script), *args, "--json", str(target)]
        if database_url:
            command += ["--database-url", database_url]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("PORTAL_BENCH_DATABASE_URL", None)  # the command line says which database
        env.pop(CACHE_ENV, None)
        if cache is not None:
            env[CACHE_ENV] = str(cache)  # a data set one script built, the next one copies
        start = time.perf_counter()
        with log.open("w") as output:
            status, cpu = _run(command, env, output, timeout)
        error = None if status == 0 else (
            f"stopped after {timeout:.0f} s" if status is None else f"exit status {status}")
        seconds = time.perf_counter() - start
        if error is None and not target.exists():
            error = "wrote no --json file"
        if error is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            return {"bench": name, "database": database, "error": error, "log": str(log),
                    "log_tail": tail, "seconds": round(seconds, 1),
                    "cpu_seconds": round(cpu, 1), "figures": []}
        document = json.loads(target.read_text())
    document["seconds"] = round(seconds, 1)
    # The script's own processes (gunicorn's too), not PostgreSQL's: what the run costs when
    # the machine is shared, where the wall clock also counts everybody else's work.
    document["cpu_seconds"] = round(cpu, 1)
    document["log"] = str(log)
    return document


def _run(command: list[str], env: dict, output, timeout: float) -> tuple[int | None, float]:
    """Run ``command``; return its exit status (None: stopped at ``timeout``) and CPU seconds.

    The CPU time is the script's own and its processes' (gunicorn's too), not PostgreSQL's:
    what the run costs on a shared machine, where the wall clock also counts everybody else's
    work. Read from the process's own rusage (wait4), so a run beside it is not counted.
    """
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    stopped = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if not stopped and time.monotonic() > deadline:
            process.kill()
            stopped = True
        time.sleep(0.1)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    cpu = usage.ru_utime + usage.ru_stime
    return (None if stopped else process.returncode), cpu


def run_all(size: str, database_url: str | None, only: list[str] | None, out: Path,
            timeout: float, progress=print, done=None, jobs: int = 1) -> list[dict]:
    """Run the chosen scripts on SQLite (and PostgreSQL); return their documents in order.

    ``jobs=2`` runs two at a time, longest first (on two idle cores that halves the wall
    clock); the table keeps the scripts' order.
    """
    out.mkdir(parents=True, exist_ok=True)
    found = scripts()
    unknown = set(only or ()) - set(found)
    if unknown:
        raise SystemExit(f"no such bench: {', '.join(sorted(unknown))} "
                         f"(there are {', '.join(found)})")
    chosen = [name for name in found if not only or name in only]
    runs = [(name, target) for name in chosen
            for target in [None] + ([database_url] if database_url and name in POSTGRESQL else [])]
    # Longest first, each worker taking the next run when it is free: the two databases' runs
    # mixed, so neither worker is left with the long tail (a leg per database was not even).
    queue = sorted(runs, key=lambda run: -COST.get(
        (run[0], "postgresql" if run[1] else "sqlite"), 60))
    finished: dict[tuple[str, str | None], dict] = {}
    lock = threading.Lock()

    def in_order() -> list[dict]:
        return [finished[run] for run in runs if run in finished]

    def next_run():
        with lock:
            return queue.pop(0) if queue else None

    def leg(cache: Path) -> None:
        while (run := next_run()) is not None:
            name, target = run
            database = "postgresql" if target else "sqlite"
            scratch = f"bench_{name}_{os.getpid()}"
            url = fresh_database(target, scratch) if target else None
            try:
                document = run_one(name, found[name], SIZES[size].get(name, []), url, out,
                                   timeout, cache)
            finally:
                if target:
                    drop_database(target, scratch)
            verdict = document.get("error") or "done"
            with lock:
                progress(f"bench: {name} on {database}: {verdict} in {document['seconds']} s "
                         f"(CPU {document['cpu_seconds']} s)", file=sys.stderr)
                finished[(name, target)] = document
                if done is not None:
                    done(in_order())  # bench.json so far: a long run can be read meanwhile

    # Data sets one script built and the next copies (tests/bench/data.py), for this run only.
    with tempfile.TemporaryDirectory(prefix="bench_cache_") as cache_dir:
        cache = Path(cache_dir)
        try:
            threads = [threading.Thread(target=leg, args=(cache,))
                       for _ in range(max(1, min(jobs, len(queue))))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            if database_url:
                drop_cached(database_url, cache)
    return in_order()


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def _cell(figure: dict | None) -> str:
    if figure is None:
        return "-"
    text = _number(figure["value"])
    if figure["ok"] is not None:
        text += " ok" if figure["ok"] else " MISSED"
    return text


def _floor(figure: dict | None) -> str:
    if figure is None or figure.get("floor") is None:
        return ""
    return f"{_number(figure['floor'])} ({figure['floor_name']})"


def table(documents: list[dict]) -> str:
    """Return the one table: a line per figure, SQLite and PostgreSQL side by side."""
    lines: list[tuple[str, ...]] = [("bench", "measure", "unit", "budget", "SQLite",
                                     "floor/peer (SQLite)", "PostgreSQL", "floor/peer (PG)")]
    rows: dict[tuple[str, str], dict[str, dict]] = {}
    errors = []
    for document in documents:
        if document.get("error"):
            errors.append(f"{document['bench']} on {document['database']}: {document['error']} "
                          f"(see {document['log']})")
        for figure in document["figures"]:
            rows.setdefault((document["bench"], figure["key"]), {})[document["database"]] = figure
    for (bench, _key), by_database in rows.items():
        first = by_database.get("sqlite") or by_database["postgresql"]
        budget = ""
        if first["budget"] is not None:
            budget = ("< " if first["better"] == "lower" else ">= ") + _number(first["budget"])
        lines.append((bench, first["name"], first["unit"], budget,
                      _cell(by_database.get("sqlite")), _floor(by_database.get("sqlite")),
                      _cell(by_database.get("postgresql")), _floor(by_database.get("postgresql"))))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = []
    for number, line in enumerate(lines):
        cells = [cell.rjust(widths[i]) if i in {4, 6} and number else cell.ljust(widths[i])
                 for i, cell in enumerate(line)]
        text.append("  ".join(cells).rstrip())
        if number == 0:
            text.append("  ".join("-" * width for width in widths))
    values = [cell for line in lines[1:] for cell in (line[4], line[6]) if cell != "-"]
    missed = sum(1 for cell in values if cell.endswith("MISSED"))
    text.append(f"{len(lines) - 1} measures, {len(values)} figures, {missed} over budget"
                + (f"; {len(errors)} runs failed:" if errors else ""))
    text.extend(f"  {error}" for error in errors)
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server (postgresql+psycopg://...) to run on as well")
    parser.add_argument("--only", default=None, help="comma-separated bench names")
    parser.add_argument("--json", dest="json_path", type=Path, default=Path("bench.json"))
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="where each script's own output goes")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per script run")
    parser.add_argument("--jobs", type=int, choices=(1, 2, 3), default=2,
                        help="runs side by side (2: one a core), longest first")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    start = time.perf_counter()

    def save(documents: list[dict]) -> dict:
        summary = {
            "size": args.size,
            "seconds": round(time.perf_counter() - start, 1),
            "cpu_seconds": round(sum(d.get("cpu_seconds", 0) for d in documents), 1),
            "cpus": len(os.sched_getaffinity(0)),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "runs": documents,
        }
        args.json_path.write_text(json.dumps(summary, indent=1, default=str) + "\n")
        return summary

    documents = run_all(args.size, args.database_url, only, args.out, args.timeout, done=save,
                        jobs=args.jobs)
    elapsed = time.perf_counter() - start
    summary = save(documents)
    print(f"make bench: size {args.size}, {len(documents)} runs in {elapsed:.0f} s "
          f"(the scripts' CPU {summary['cpu_seconds']:.0f} s) on {summary['cpus']} cores, "
          f"load average {summary['load_average'][0]}; own output of "
          f"each script in {args.out}/, every figure in {args.json_path}")
    print(table(documents))
    minutes, seconds = divmod(round(elapsed), 60)
    print(f"make bench: wall time {minutes} min {seconds:02d} s "
          f"({'within' if elapsed < 600 else 'OVER'} the 10 minutes), "
          f"load average {os.getloadavg()[0]:.1f}")
    return 1 if any(document.get("error") for document in documents) else 0


if __name__ == "__main__":
    sys.exit(main())
