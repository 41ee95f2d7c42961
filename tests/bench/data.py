"""Loading a bench's data set set-wise, fast on both databases, and reusing it across scripts."""
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


def insert(model, rows: list[dict], chunk: int = 20_000) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``model``'s table.

    On PostgreSQL through COPY (psycopg's ``cursor.copy``): an executemany runs one INSERT per
    row, and the statement-level triggers of ``users`` (the search table) with it, which made
    building 100,000 users take many minutes; COPY fires them once. SQLite's executemany is its
    fastest path.
    """
    if not rows:
        return
    table = getattr(model, "__table__", model)
    if db.session.get_bind().dialect.name != "postgresql":
        for start in range(0, len(rows), chunk):
            db.session.execute(sa.insert(table), rows[start:start + chunk])
        return
    from psycopg.types.json import Jsonb

    given = list(rows[0])
    # COPY knows the database's defaults only: the models' Python-side ones are added here.
    defaults = {}
    for column in table.columns:
        if column.name not in given and column.default is not None:
            default = column.default
            defaults[column.name] = default.arg if default.is_scalar else default.arg(None)
    names = given + list(defaults)
    json_columns = {name for name in names if isinstance(table.c[name].type, sa.JSON)}
    connection = db.session.connection().connection.driver_connection
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                values = {**row, **defaults}
                copy.write_row([Jsonb(values[name]) if name in json_columns else values[name]
                                for name in names])


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
