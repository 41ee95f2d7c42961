"""`make bench`'s aggregator (tests/bench/aggregate.py) keeps working: a tiny real run, bounded.

The benchmarks are not part of the test run (they take minutes); this runs one of them at a
size of seconds through the aggregator, as `make bench` does (on the PostgreSQL server of the
test run as well when there is one), and checks the table and bench.json; and it checks that
every tests/bench/bench_*.py script has sizes in the aggregator and writes the --json document.
"""
import json
import os
import re
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from tests.bench import aggregate
from tests.bench import figures

BENCH = Path(aggregate.__file__).resolve().parent


def test_every_bench_script_has_sizes_and_writes_the_json_document():
    names = set(aggregate.scripts())
    assert {"users_list", "deletion", "groups", "scim", "login_timing", "auth", "csv",
            "http"} <= names
    for size in aggregate.SIZES.values():
        assert names <= set(size), names - set(size)
    for name, script in aggregate.scripts().items():
        source = script.read_text()
        assert "report.add_argument(parser)" in source, name
        assert re.search(rf'report\.write\(args\.json_path, "{name}"', source), name
        if name in aggregate.POSTGRESQL:
            assert '"--database-url"' in source, name


def test_the_table_puts_each_figure_beside_its_budget_floor_and_both_databases():
    lite = figures.write(None, "demo", "sqlite", [
        figures.figure("page_ms", "a list page", 12.5, "ms", budget=25),
        figures.figure("import", "an import", 30_000, "rows/s", budget=25_000, better="higher",
                       floor=40_000, floor_name="sqlite3 by hand"),
    ], size={"users": 10})
    pg = figures.write(None, "demo", "postgresql", [
        figures.figure("page_ms", "a list page", 38.0, "ms", budget=25),
    ], size={"users": 10})
    failed = {"bench": "other", "database": "postgresql", "error": "exit status 1",
              "log": "bench-results/other-postgresql.txt", "figures": []}
    text = aggregate.table([lite, pg, failed])
    lines = text.splitlines()
    page = next(line for line in lines if "a list page" in line)
    assert re.search(r"< 25\.0\s+12\.5 ok\s+38\.0 MISSED", page), page
    imported = next(line for line in lines if "an import" in line)
    assert ">= 25,000" in imported and "30,000 ok" in imported
    assert "40,000 (sqlite3 by hand)" in imported
    assert imported.rstrip().endswith("-")  # no PostgreSQL figure
    assert "2 measures, 3 figures, 1 over budget; 1 runs failed:" in text
    assert "other on postgresql: exit status 1" in text


def test_a_tiny_make_bench_run_prints_one_table_and_bench_json(tmp_path, capsys):
    """One real script (deletion: delete, restore, purge) at a tiny size: about 10 s per
    database on a quiet machine (35 s for both under a load average of 10)."""
    server = os.environ.get("PORTAL_TEST_DATABASE_URL")
    argv = ["--size", "tiny", "--only", "deletion", "--json", str(tmp_path / "bench.json"),
            "--out", str(tmp_path / "out"), "--timeout", "120"]
    if server:
        argv += ["--database-url", server]
    assert aggregate.main(argv) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    document = json.loads((tmp_path / "bench.json").read_text())
    runs = {run["database"]: run for run in document["runs"]}
    assert set(runs) == ({"sqlite", "postgresql"} if server else {"sqlite"})
    for run in runs.values():
        assert run["bench"] == "deletion" and run["size"]["purge"] == 100
        keys = {figure["key"]: figure for figure in run["figures"]}
        assert keys["purge_erase_s"]["budget"] == 2.0
        assert keys["purge_erase_s"]["value"] > 0
        assert (tmp_path / "out" / f"deletion-{run['database']}.txt").read_text().strip()
    assert runs["sqlite"]["figures"][-1]["key"] == "dry_run_erase_s"
    floor = {f["key"]: f for f in runs["sqlite"]["figures"]}["purge_erase_s"]
    assert floor["floor_name"] == "sqlite3 by hand" and floor["floor"] > 0
    table = out[out.index("bench "):]
    erase = next(line for line in table.splitlines() if "erase 100 people" in line)
    assert "(sqlite3 by hand)" in erase
    assert " ok" in erase or " MISSED" in erase
    if server:
        # The aggregator dropped the database it made for the script.
        engine = sa.create_engine(server)
        with engine.connect() as conn:
            assert conn.scalar(sa.text(
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'bench_deletion_%'")) == 0
        engine.dispose()


def test_a_data_set_one_script_built_is_copied_for_the_next(tmp_path, monkeypatch):
    """tests/bench/data.py: save() keeps the database a script filled, restore() gives the next
    script a copy (SQLite: the file; PostgreSQL: CREATE DATABASE ... TEMPLATE); without
    PORTAL_BENCH_CACHE (outside make bench) neither does anything."""
    from flask import Flask

    from portal.extensions import db
    from tests.bench import data

    cache = tmp_path / "bench_cache_test"
    cache.mkdir()
    server = os.environ.get("PORTAL_TEST_DATABASE_URL")
    names = ["first", "second"]
    if server:
        urls = [aggregate.fresh_database(server, f"bench_copy_{name}_{os.getpid()}")
                for name in names]
    else:
        urls = [f"sqlite:///{tmp_path / name}.db" for name in names]
    monkeypatch.delenv(data.CACHE_ENV, raising=False)
    assert data.restore("demo", urls[1]) is False
    monkeypatch.setenv(data.CACHE_ENV, str(cache))
    assert data.restore("demo", urls[1]) is False  # nothing saved yet
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = urls[0]
    db.init_app(app)
    with app.app_context():
        db.session.execute(sa.text("CREATE TABLE kept (n INTEGER)"))
        db.session.execute(sa.text("INSERT INTO kept VALUES (42)"))
        db.session.commit()
        data.save("demo", urls[0], db.engine)
    assert data.restore("demo", urls[1]) is True
    engine = sa.create_engine(urls[1])
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT n FROM kept")) == 42
    engine.dispose()
    if server:
        for name in names:
            aggregate.drop_database(server, f"bench_copy_{name}_{os.getpid()}")
        aggregate.drop_cached(server, cache)
        engine = sa.create_engine(server)
        with engine.connect() as conn:
            assert conn.scalar(sa.text(
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'bench_cache_bench_cache_test%'"
            )) == 0
        engine.dispose()


def test_two_workers_take_the_runs_longest_first_across_both_databases(tmp_path, monkeypatch):
    """--jobs 2: the runs of both databases in one queue, longest first (aggregate.COST), each
    worker taking the next when it is free, so neither is left with the long tail (one leg a
    database left the SQLite leg 1,594 s of a 1,597 s run, the PostgreSQL one 1,320 s); the
    HTTP load test, which saves the 100,000 users, goes before the Users list, which copies
    them; the table keeps the scripts' order."""
    started, workers = [], set()
    lock = threading.Lock()

    def run_one(name, script, args, url, out, timeout, cache=None):
        database = "postgresql" if url else "sqlite"
        with lock:
            started.append((name, database))
            workers.add(threading.get_ident())
        time.sleep(aggregate.COST.get((name, database), 60) / 20_000)
        return {"bench": name, "database": database, "figures": [], "seconds": 0.0,
                "cpu_seconds": 0.0, "log": "-"}

    monkeypatch.setattr(aggregate, "run_one", run_one)
    monkeypatch.setattr(aggregate, "fresh_database", lambda server, name: server + name)
    monkeypatch.setattr(aggregate, "drop_database", lambda server, name: None)
    monkeypatch.setattr(aggregate, "drop_cached", lambda server, cache: None)
    documents = aggregate.run_all("tiny", "postgresql+psycopg://bench@127.0.0.1/", None,
                                  tmp_path, 60, progress=lambda *a, **k: None, jobs=2)
    expected = sorted(started, key=lambda run: -aggregate.COST.get(run, 60))
    assert started == expected
    assert started[:2] == [("deletion", "postgresql"), ("deletion", "sqlite")]
    assert len(workers) == 2
    for database in ("sqlite", "postgresql"):
        assert started.index(("http", database)) < started.index(("users_list", database))
    names = list(aggregate.scripts())
    assert [d["bench"] for d in documents] == sorted(
        (d["bench"] for d in documents), key=names.index)
    assert len(documents) == len(names) + len(aggregate.POSTGRESQL & set(names))
