"""Flask extensions, created unbound and bound by the factory."""
import functools
import re
import sqlite3
from contextvars import ContextVar
from datetime import date
from datetime import datetime

import sqlalchemy as sa
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from portal.models.base import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
mail = Mail()
csrf = CSRFProtect()
# Keyed on the socket's peer address: X-Forwarded-For is only trusted behind a configured proxy.
limiter = Limiter(key_func=get_remote_address, default_limits=[])


# Statements run on the driver's own cursor (services/bulk.py) hand it datetimes: say how they are
# stored, as sqlite3's default adapters did (deprecated since Python 3.12; SQLAlchemy's own
# statements store the same text), so no Python version warns or writes them otherwise.
sqlite3.register_adapter(datetime, lambda value: value.isoformat(" "))
sqlite3.register_adapter(date, lambda value: value.isoformat())


def configure_sqlite(dbapi_connection, _record, busy_seconds: float = 30) -> None:
    """Turn on what SQLite leaves off: foreign keys, WAL, a busy timeout."""
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
    # Read through a shared memory map rather than read() calls into a small per-connection
    # cache: the Users list probes rows at random across a 100,000-user account.
    cur.execute("PRAGMA mmap_size=268435456")
    cur.close()


# SQLite transactions take the write lock at BEGIN, so concurrent writers queue (busy timeout)
# instead of failing when a read snapshot cannot be upgraded. The test suite switches this off
# for the test's own session only, so its reads never hold the lock against the app it drives.
sqlite_immediate_begin: ContextVar[bool] = ContextVar("sqlite_immediate_begin", default=True)
# A request that changes nothing by its method (GET, HEAD, OPTIONS; set per request by the
# factory) begins deferred instead: it reads from its own WAL snapshot beside the writers and
# every other reader, and takes the write lock only if it comes to write (last seen once a
# minute, an audit event) — then its snapshot is let go (nothing was written yet) and the
# transaction starts again IMMEDIATE, so it queues like any writer and never fails with
# SQLITE_BUSY_SNAPSHOT. Without this every page view held the one write lock for its whole
# request: 20 clients on 4 gunicorn workers were served one request at a time (issue 16).
sqlite_read_first: ContextVar[bool] = ContextVar("sqlite_read_first", default=False)
# What takes the write lock (SAVEPOINT too: a savepoint must not be lost to the restart).
_WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|SAVEPOINT)\b",
                     re.IGNORECASE)
# A bulk import switches SQLite's per-row foreign-key lookups off for its one transaction
# (a fifth of its time): each of its INSERT ... SELECT statements takes every id it stores from
# a join on the referenced table, inside a transaction no other writer can enter.
sqlite_foreign_keys: ContextVar[bool] = ContextVar("sqlite_foreign_keys", default=True)


def bind_sqlite_events(engine: sa.Engine, busy_seconds: float = 30) -> None:
    """Give pysqlite real transactions (BEGIN IMMEDIATE) so writers queue instead of failing."""
    if engine.dialect.name != "sqlite":
        return
    sa.event.listen(engine, "connect",
                    functools.partial(configure_sqlite, busy_seconds=busy_seconds))

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(conn):
        conn.info["read_first"] = False
        # The pragma only takes effect outside a transaction, so it is set here, before BEGIN.
        foreign_keys = sqlite_foreign_keys.get()
        if conn.info.get("foreign_keys", True) != foreign_keys:
            conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            conn.info["foreign_keys"] = foreign_keys
        immediate = sqlite_immediate_begin.get()
        read_first = immediate and sqlite_read_first.get()
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate and not read_first else "BEGIN")
        conn.info["read_first"] = read_first

    @sa.event.listens_for(engine, "commit")
    @sa.event.listens_for(engine, "rollback")
    def _transaction_over(conn):
        conn.info["read_first"] = False

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _write_lock_before_first_write(conn, cursor, statement, _parameters, _context,
                                       _executemany):
        if conn.info.get("read_first") and _WRITES.match(statement):
            conn.info["read_first"] = False
            cursor.execute("ROLLBACK")  # only reads so far: nothing is lost
            cursor.execute("BEGIN IMMEDIATE")
