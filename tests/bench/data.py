"""Loading a bench's data set set-wise, fast on both databases, and reusing it across scripts."""
import contextlib
import itertools
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from portal.extensions import db
from portal.models import User
from portal.models import utcnow
from portal.services import accounts

PASSWORD = "correct horse battery staple"
ANALYZE_FROM = 1000  # rows COPY'd into a table on PostgreSQL from which insert() analyses it


def two_accounts_with_people(people: int, user: Callable[[int], dict],
                             member: Callable[[int], dict] = lambda n: {}):
    """Create the bench's account (admin@bench.example) and another (admin@elsewhere.example),
    and the rows of ``people`` people in the first and a tenth as many in the second (the
    searches must skip them); ``user(n)`` and ``member(n)`` give person n's own columns.

    Return (admin, other, users, members): the two admins' memberships and the user and
    membership rows, ids given, for the caller to insert."""
    admin = accounts.create_account("Bench", admin_email="admin@bench.example",
                                    admin_name="Bench Admin", password=PASSWORD)
    other = accounts.create_account("Elsewhere", admin_email="admin@elsewhere.example",
                                    admin_name="Other Admin", password=PASSWORD)
    now = utcnow()
    base = db.session.scalar(sa.select(sa.func.max(User.id)))
    users, members = [], []
    for n in range(people + people // 10):
        uid = base + 1 + n
        users.append({"id": uid, "created_at": now, **user(n)})
        members.append({"account_id": admin.account_id if n < people else other.account_id,
                         "user_id": uid, "role": "member", "invite_state": "active",
                         "created_at": now, **member(n)})
    return admin, other, users, members


def insert(model, rows, chunk: int = 20_000, columns: list[str] | None = None) -> None:
    """Insert ``rows`` into ``model``'s table, set-wise, on the session's connection.

    ``rows``: dicts with the same keys, or (with ``columns``) tuples of those columns' values,
    any iterable (a generator keeps a million rows out of memory). Python values as the models
    take them (datetimes, dicts for JSON): each column's own bind processing turns them into
    what SQLAlchemy would store, so the rows equal those the product writes.

    PostgreSQL: COPY (psycopg's ``cursor.copy``): an executemany runs one INSERT per row, and
    the statement-level triggers of ``users`` (the search table) with it; COPY fires them once.
    SQLite: the driver's own executemany of tuples (SQLAlchemy's executemany of dicts, let alone
    the ORM's bulk insert, spent 5-10x the CPU of the insert itself on building parameters).
    """
    table = getattr(model, "__table__", model)
    rows = iter(rows)
    if columns is None:
        first = next(rows, None)
        if first is None:
            return
        given = list(first)
        rows = itertools.chain([first], rows)
        rows = (tuple(row[name] for name in given) for row in rows)
    else:
        given = list(columns)
    # The models' Python-side defaults (the database knows none of them), one value for all.
    defaults = []
    for column in table.columns:
        if column.name not in given and column.default is not None:
            default = column.default
            if default.is_scalar or default.is_callable:
                defaults.append((column.name,
                                 default.arg if default.is_scalar else default.arg(None)))
    names = given + [name for name, _value in defaults]
    extra = tuple(value for _name, value in defaults)
    if extra:
        rows = (row + extra for row in rows)
    connection = db.session.connection()
    driver = connection.connection.driver_connection
    if connection.dialect.name != "postgresql":
        dialect = connection.dialect
        processors = [(i, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
                      for i, name in enumerate(names)]
        processors = [(i, process) for i, process in processors if process is not None]
        if processors:
            rows = _processed(rows, processors)
        statement = (f"INSERT INTO {table.name} ({', '.join(names)}) "
                     f"VALUES ({', '.join('?' * len(names))})")
        while batch := list(itertools.islice(rows, chunk)):
            driver.executemany(statement, batch)
        return
    from psycopg.types.json import Jsonb

    json_at = [i for i, name in enumerate(names) if isinstance(table.c[name].type, sa.JSON)]
    with driver.cursor() as cursor:
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            if json_at:
                for row in rows:
                    row = list(row)
                    for i in json_at:
                        row[i] = Jsonb(row[i])
                    copy.write_row(row)
            else:
                for row in rows:
                    copy.write_row(row)
        copied = cursor.rowcount
    if copied >= ANALYZE_FROM:
        # Planner statistics now, not when autovacuum comes: a builder's next statement joins
        # the rows it just loaded (a membership's id by its person), and a plan made for an
        # empty table (a nested loop over a table whose indexes indexes_after dropped) took
        # minutes at 100,000 rows.
        connection.exec_driver_sql(f"ANALYZE {table.name}")
    if "id" in names and "id" in table.c and table.c.id.autoincrement in (True, "auto"):
        # Rows inserted with their ids: move the sequence past them, as the database would.
        connection.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
            f"(SELECT max(id) FROM {table.name}))")


def _processed(rows, processors):
    """Apply each column's bind processor; a value the same as the row before's (a build's one
    ``now`` in every row) is not processed again."""
    last = {i: (object(), None) for i, _process in processors}
    for row in rows:
        row = list(row)
        for i, process in processors:
            value = row[i]
            seen, done = last[i]
            if value is not seen:
                done = process(value)
                last[i] = (value, done)
            row[i] = done
        yield row


def _index_definitions(connection: sa.Connection, tables: list[str]) -> list[tuple[str, str]]:
    """Return (name, CREATE statement) of the tables' secondary, non-unique indexes."""
    if connection.dialect.name == "postgresql":
        return [tuple(row) for row in connection.execute(sa.text(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "WHERE t.relname = ANY(:tables) AND NOT x.indisunique AND NOT x.indisprimary "
            "AND t.relnamespace = 'public'::regnamespace ORDER BY i.relname"),
            {"tables": tables})]
    marks = ", ".join("?" * len(tables))
    return [tuple(row) for row in connection.exec_driver_sql(
        f"SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({marks}) AND sql NOT LIKE 'CREATE UNIQUE%' ORDER BY name",
        tuple(tables))]


def _drop_trigger(connection: sa.Connection, name: str) -> str | None:
    """Drop SQLite's trigger ``name``; return its CREATE statement (None: there is none)."""
    sql = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = ?", (name,)).scalar()
    if sql:
        connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
    return sql


@contextlib.contextmanager
def indexes_after(*models):
    """Drop the tables' secondary (non-unique) indexes for a bulk load, create them after.

    ``models``: models, tables or table names. With ``users``, the people's search index
    too: SQLite's trigram table is rebuilt once after the load instead of a trigger's insert
    per person; PostgreSQL's GIN index on user_search is created after it.

    Entering each row into half a dozen indexes at random places costs a bulk load most of
    its time (1,000,000 audit events: 6 B-trees); one sort per index at the end builds the
    same indexes (their very definitions, read from the database) at a fraction of it.
    SQLite's planner statistics of those indexes (sqlite_stat1: the product pins them, see
    portal/models/search.py) go with a dropped index; they are put back as they were.
    """
    connection = db.session.connection()
    tables = [model if isinstance(model, str) else getattr(model, "__table__", model).name
              for model in models]
    sqlite = connection.dialect.name != "postgresql"
    if not sqlite and "users" in tables:
        tables.append("user_search")  # its trigram index (the statement trigger fills it)
    indexes = _index_definitions(connection, tables)
    search_trigger = sort_trigger = None
    if sqlite and "users" in tables:
        # The trigram search table (portal/models/search.py) takes each person in a trigger
        # of its own: one 'rebuild' after the load builds the same index at a third of it.
        search_trigger = _drop_trigger(connection, "users_search_insert")
    if sqlite and "memberships" in tables:
        # The memberships' sort keys (the person's name and e-mail), an UPDATE per row in a
        # trigger: one set-wise UPDATE of the rows that came without them after the load.
        sort_trigger = _drop_trigger(connection, "memberships_sort_keys")
    stats = []
    if sqlite and connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").first():
        stats = connection.exec_driver_sql(
            "SELECT tbl, idx, stat FROM sqlite_stat1 WHERE idx IN ({})".format(
                ", ".join("?" * len(indexes)) or "NULL"),
            tuple(name for name, _sql in indexes)).all()
    for name, _sql in indexes:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    connection = db.session.connection()
    if not sqlite:
        connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
    if sort_trigger:
        connection.exec_driver_sql(
            "UPDATE memberships SET "
            "sort_name = (SELECT lower(name) FROM users WHERE id = memberships.user_id), "
            "sort_email = (SELECT email FROM users WHERE id = memberships.user_id) "
            "WHERE sort_name IS NULL")
        connection.exec_driver_sql(sort_trigger)
    for _name, sql in indexes:
        connection.exec_driver_sql(sql)
    if search_trigger:
        connection.exec_driver_sql("INSERT INTO user_search (user_search) VALUES ('rebuild')")
        connection.exec_driver_sql(search_trigger)
    if stats:
        connection.exec_driver_sql("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)",
                                   [tuple(row) for row in stats])
        connection.exec_driver_sql("ANALYZE sqlite_schema")  # reload the statistics


def analyze(engine: sa.engine.Engine) -> None:
    """PostgreSQL: VACUUM ANALYZE, what autovacuum does shortly after a bulk load (planner
    statistics, the visibility map). SQLite keeps the product's pinned statistics."""
    if engine.dialect.name != "postgresql":
        return
    db.session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


# A data set built once per `make bench` run and copied for the next script that needs the
# same one (tests/bench/aggregate.py sets PORTAL_BENCH_CACHE to a directory of its own and
# drops the copies afterwards): the Users list and the HTTP load test both load 100,000 users.
CACHE_ENV = "PORTAL_BENCH_CACHE"


def _cache_names(key: str, url: str) -> tuple[Path, str] | None:
    directory = os.environ.get(CACHE_ENV)
    if not directory:
        return None
    tag = re.sub(r"[^a-z0-9]+", "_", f"{Path(directory).name}_{key}".lower())
    return Path(directory) / f"{tag}.db", f"bench_cache_{tag}"[:63]


def _server(url: str) -> sa.engine.Engine:
    return sa.create_engine(sa.engine.make_url(url).set(database="postgres"),
                            isolation_level="AUTOCOMMIT")


def restore(key: str, url: str) -> bool:
    """Make the database of ``url`` a copy of the data set saved under ``key``; say whether.

    Call it before anything connects to ``url``. SQLite: the saved file is copied over it;
    PostgreSQL: the database is created again from the saved one (CREATE DATABASE ...
    TEMPLATE, a file copy: seconds where building took a minute).
    """
    names = _cache_names(key, url)
    if names is None:
        return False
    path, template = names
    if not url.startswith("postgresql"):
        if not path.exists():
            return False
        shutil.copyfile(path, sa.engine.make_url(url).database)
        return True
    target = sa.engine.make_url(url).database
    engine = _server(url)
    try:
        with engine.connect() as conn:
            if not conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                               {"name": template}):
                return False
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{target}" TEMPLATE "{template}"')
    finally:
        engine.dispose()
    return True


def save(key: str, url: str, engine: sa.engine.Engine) -> None:
    """Keep the data set now in ``url`` under ``key`` for restore() (no-op outside make bench).

    The session ends and ``engine`` (the app's) is disposed of first: PostgreSQL copies only a
    database nobody is connected to; SQLite's file is copied through its backup API, WAL
    included. Objects loaded before are detached: load them again.
    """
    names = _cache_names(key, url)
    if names is None:
        return
    path, template = names
    db.session.remove()
    engine.dispose()
    if not url.startswith("postgresql"):
        import sqlite3

        source = sqlite3.connect(sa.engine.make_url(url).database)
        copy = sqlite3.connect(path)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        return
    server = _server(url)
    try:
        with server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{template}"')
            conn.exec_driver_sql(
                f'CREATE DATABASE "{template}" TEMPLATE "{sa.engine.make_url(url).database}"')
    finally:
        server.dispose()
