"""`make bench`'s data builders (tests/bench/data.py) load what the product would have stored.

The builders skip SQLAlchemy for speed (sqlite3's executemany of tuples, PostgreSQL's COPY)
and create a table's indexes after a bulk load instead of before: the rows must still equal
those SQLAlchemy's own INSERT stores (the same text for datetimes and JSON on SQLite, the
models' Python-side defaults), and the indexes and SQLite's pinned planner statistics must be
the very ones the schema had.
"""
from datetime import datetime

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Membership
from portal.models import User
from portal.services import accounts
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
    """Every index and trigger of ``tables`` (name, definition) and SQLite's planner
    statistics of them."""
    if db.engine.dialect.name == "postgresql":
        return [tuple(row) for row in db.session.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:tables) "
            "UNION ALL SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relname = ANY(:tables) "
            "AND NOT t.tgisinternal ORDER BY 1"), {"tables": tables})], []
    marks = ", ".join("?" * len(tables))
    indexes = db.session.connection().exec_driver_sql(
        f"SELECT type, name, sql FROM sqlite_schema WHERE type IN ('index', 'trigger') "
        f"AND tbl_name IN ({marks}) ORDER BY name", tuple(tables)).all()
    stats = db.session.connection().exec_driver_sql(
        f"SELECT tbl, idx, stat FROM sqlite_stat1 WHERE tbl IN ({marks}) ORDER BY idx",
        tuple(tables)).all()
    return [tuple(row) for row in indexes], [tuple(row) for row in stats]


def found(part: str) -> list[int]:
    """The people whose name or e-mail holds ``part``, through the trigram search table."""
    if db.engine.dialect.name == "postgresql":
        return list(db.session.scalars(sa.text(
            "SELECT user_id FROM user_search WHERE body LIKE :q ORDER BY user_id"),
            {"q": f"%{part}%"}))
    return list(db.session.scalars(sa.text(
        "SELECT rowid FROM user_search WHERE user_search MATCH :q ORDER BY rowid"),
        {"q": f'"{part}"'}))


def test_indexes_after_a_bulk_load_are_the_schemas_own(app):
    tables = ["audit_events", "memberships", "users", "user_search"]
    before = schema(tables)
    assert len(before[0]) >= 12  # audit_events has 7, memberships a dozen, users' triggers
    if db.engine.dialect.name == "sqlite":
        assert before[1]  # the product's pinned statistics of memberships' indexes
    with data.indexes_after(AuditEvent, Membership, User):
        during = schema(tables)
        data.insert(AuditEvent, [dict(row, action="bulk") for row in ROWS * 50])
        data.insert(User, [{"id": 100 + n, "email": f"p{n}@example.org", "name": f"Ünal Öz {n}",
                            "created_at": datetime(2026, 3, 1)} for n in range(30)])
        account = accounts.create_account("Bench", admin_email="admin@bench.example",
                                          password="correct horse battery staple")
        data.insert(Membership, [{"account_id": account.account_id, "user_id": 100 + n,
                                  "role": "member", "invite_state": "active",
                                  "created_at": datetime(2026, 3, 1)} for n in range(30)])
    db.session.commit()
    assert len(during[0]) < len(before[0])  # the secondary indexes were gone for the load
    assert schema(tables) == before
    # The recreated indexes answer (and hold the rows loaded without them); the people loaded
    # without the search trigger are found, and one added afterwards through the trigger too.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.actor_user_id == 7, AuditEvent.action == "bulk")) == 50
    assert found("öz 2") == [102] + list(range(120, 130))
    # The sort keys the memberships' trigger writes, as it writes them (SQLite's lower() folds
    # ASCII only), with the trigger back for the next membership.
    keys = db.session.execute(sa.select(Membership.sort_name, Membership.sort_email).where(
        Membership.user_id == 102)).one()
    expected = db.session.execute(sa.select(sa.func.lower(User.name), User.email).where(
        User.id == 102)).one()
    assert tuple(keys) == tuple(expected) and keys.sort_email == "p2@example.org"
    db.session.add(User(email="late@example.org", name="Late Öz 2"))
    db.session.commit()
    assert len(found("öz 2")) == 12


@pytest.mark.database("postgresql")
def test_a_bulk_load_on_postgresql_leaves_planner_statistics(app):
    """The builders' next statements join what they just loaded: planned for an empty table
    (no statistics, the indexes dropped by indexes_after) a membership-by-person look-up
    ran for over 10 minutes at 100,000 rows in deletion's build."""
    with data.indexes_after(AuditEvent):
        data.insert(AuditEvent, [dict(row, action="bulk") for row in ROWS * 600])
        assert db.session.scalar(sa.text(
            "SELECT reltuples FROM pg_class WHERE relname = 'audit_events'")) == 1200
    db.session.commit()
