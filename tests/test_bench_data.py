"""`make bench`'s data builders (tests/bench/data.py) load what the product would have stored.

The builders skip SQLAlchemy for speed (sqlite3's executemany of tuples, PostgreSQL's COPY)
and create a table's indexes after a bulk load instead of before: the rows must still equal
those SQLAlchemy's own INSERT stores (the same text for datetimes and JSON on SQLite, the
models' Python-side defaults), and the indexes and SQLite's pinned planner statistics must be
the very ones the schema had.
"""
from datetime import datetime

import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Membership
from portal.models import User
from tests.bench import data

ROWS = [
    {"account_id": None, "actor_user_id": 7, "actor_label": "Ada <ada@example.org>",
     "subject_user_id": None, "subject_label": None, "action": "login",
     "details": {"device": "Chrome 131 on Windows", "n": 1}, "ip": "192.0.2.10",
     "created_at": datetime(2026, 3, 1, 9, 30)},  # no microseconds: SQLite's text keeps them
    {"account_id": None, "actor_user_id": None, "actor_label": None, "subject_user_id": 8,
     "subject_label": "Bo <bo@example.org>", "action": "login.failed", "details": {},
     "ip": None, "created_at": datetime(2026, 3, 1, 9, 30, 12, 345678)},
]


def stored(action: str) -> list[tuple]:
    """The rows of ``action`` as the database hands them back (text on SQLite)."""
    columns = "actor_user_id, actor_label, subject_user_id, subject_label, details, ip, created_at"
    if db.engine.dialect.name == "postgresql":
        columns = columns.replace("details", "details::text").replace(
            "created_at", "created_at::text")
    return [tuple(row) for row in db.session.execute(sa.text(
        f"SELECT {columns} FROM audit_events WHERE action LIKE :action ORDER BY id"),
        {"action": action + "%"})]


def test_the_fast_insert_stores_what_sqlalchemy_stores(app):
    db.session.execute(sa.insert(AuditEvent), [dict(row, action="sa." + row["action"])
                                               for row in ROWS])
    data.insert(AuditEvent, [dict(row, action="fast." + row["action"]) for row in ROWS])
    fields = list(ROWS[0])
    data.insert(AuditEvent, (tuple("tuples." + row[f] if f == "action" else row[f]
                                   for f in fields) for row in ROWS), columns=fields)
    db.session.commit()
    assert len(stored("sa.")) == 2
    assert stored("fast.") == stored("sa.")
    assert stored("tuples.") == stored("sa.")
    # The models' Python-side defaults (must_change_password, failed_logins, version) too,
    # and ids given: the next row the product inserts gets the next id.
    data.insert(User, [{"id": 500 + n, "email": f"p{n}@example.org", "name": f"P {n}",
                        "created_at": datetime(2026, 3, 1)} for n in range(3)])
    db.session.commit()
    person = User(email="next@example.org", name="Next")
    db.session.add(person)
    db.session.commit()
    assert person.id == 503
    fast = db.session.get(User, 501)
    assert (fast.must_change_password, fast.failed_logins, fast.version) == (
        person.must_change_password, person.failed_logins, person.version)


def schema(tables: list[str]) -> tuple[list, list]:
    """Every index of ``tables`` (name, definition) and SQLite's planner statistics of them."""
    if db.engine.dialect.name == "postgresql":
        return [tuple(row) for row in db.session.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:tables) "
            "ORDER BY indexname"), {"tables": tables})], []
    marks = ", ".join("?" * len(tables))
    indexes = db.session.connection().exec_driver_sql(
        f"SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name IN ({marks}) "
        "ORDER BY name", tuple(tables)).all()
    stats = db.session.connection().exec_driver_sql(
        f"SELECT tbl, idx, stat FROM sqlite_stat1 WHERE tbl IN ({marks}) ORDER BY idx",
        tuple(tables)).all()
    return [tuple(row) for row in indexes], [tuple(row) for row in stats]


def test_indexes_after_a_bulk_load_are_the_schemas_own(app):
    tables = ["audit_events", "memberships"]
    before = schema(tables)
    assert len(before[0]) >= 10  # audit_events has 7, memberships a dozen
    if db.engine.dialect.name == "sqlite":
        assert before[1]  # the product's pinned statistics of memberships' indexes
    with data.indexes_after(AuditEvent, Membership):
        during = schema(tables)
        data.insert(AuditEvent, [dict(row, action="bulk") for row in ROWS * 50])
    db.session.commit()
    assert len(during[0]) < len(before[0])  # the secondary indexes were gone for the load
    assert schema(tables) == before
    # The recreated indexes answer (and hold the rows loaded without them).
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.actor_user_id == 7, AuditEvent.action == "bulk")) == 50
