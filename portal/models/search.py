"""Database-side helpers of the Users list: sort keys copied onto memberships, and search.

The list of one account can hold 100,000 people, so it must page through an index of that
account alone: ``memberships.sort_name / sort_email`` copy the person's name (lower-cased) and
e-mail onto each membership, and triggers keep the copies current whoever writes ``users`` or
``memberships`` (services, CSV import, raw SQL alike). ``memberships.sort_last_seen`` is no
copy: it is the person's last activity in that account, written by the sign-in service
(another account's activity never shows, nor sorts, in this one).

Substring search ("%q%") uses a trigram index: an FTS5 table with the trigram tokenizer on
SQLite, a pg_trgm GIN index on PostgreSQL. Both are named ``user_search`` (rowid/user_id →
the person's lower-cased name and e-mail) and are kept by triggers too.

None of this is in the models' metadata (Alembic cannot express it). It is created after
``metadata.create_all`` (tests) and by migration 0002; ``include_name`` hides it from
autogenerate. A future batch migration that *recreates* ``users`` or ``memberships`` on SQLite
drops their triggers: call ``create(bind)`` again at its end (tests/services/test_users_list.py
checks that the copies follow a change after ``flask db upgrade``).
"""
import sqlalchemy as sa

from portal.models.base import Base

SQLITE = [
    """CREATE VIRTUAL TABLE user_search USING fts5(
        name, email, content='users', content_rowid='id', tokenize='trigram')""",
    """CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
        INSERT INTO user_search (rowid, name, email) VALUES (NEW.id, NEW.name, NEW.email);
    END""",
    """CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
        INSERT INTO user_search (user_search, rowid, name, email)
        VALUES ('delete', OLD.id, OLD.name, OLD.email);
    END""",
    """CREATE TRIGGER users_search_update AFTER UPDATE OF name, email ON users BEGIN
        INSERT INTO user_search (user_search, rowid, name, email)
        VALUES ('delete', OLD.id, OLD.name, OLD.email);
        INSERT INTO user_search (rowid, name, email) VALUES (NEW.id, NEW.name, NEW.email);
    END""",
    # Skipped when the insert brings the keys itself (the CSV import's INSERT ... SELECT does):
    # the per-row UPDATE would cost it more than everything else it writes for a membership.
    """CREATE TRIGGER memberships_sort_keys AFTER INSERT ON memberships
        WHEN NEW.sort_name IS NULL BEGIN
        UPDATE memberships SET
            sort_name = (SELECT lower(name) FROM users WHERE id = NEW.user_id),
            sort_email = (SELECT email FROM users WHERE id = NEW.user_id)
        WHERE id = NEW.id;
    END""",
    """CREATE TRIGGER users_sort_keys AFTER UPDATE OF name, email ON users BEGIN
        UPDATE memberships SET sort_name = lower(NEW.name), sort_email = NEW.email
        WHERE user_id = NEW.id;
    END""",
    # Rows that existed before the triggers (migrating a filled database).
    "INSERT INTO user_search (user_search) VALUES ('rebuild')",
    """UPDATE memberships SET
        sort_name = (SELECT lower(name) FROM users WHERE users.id = memberships.user_id),
        sort_email = (SELECT email FROM users WHERE users.id = memberships.user_id)""",
]

SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS users_sort_keys",
    "DROP TRIGGER IF EXISTS memberships_sort_keys",
    "DROP TRIGGER IF EXISTS users_search_update",
    "DROP TRIGGER IF EXISTS users_search_delete",
    "DROP TRIGGER IF EXISTS users_search_insert",
    "DROP TABLE IF EXISTS user_search",
]

# "Last seen" sorts never-seen people as the oldest (NULLS FIRST ascending, SQLite's own
# order); PostgreSQL's default puts NULLs last, so it gets an index in the list's order too.
PG_SEEN_INDEX = """CREATE INDEX IF NOT EXISTS ix_memberships_pg_live_seen
    ON memberships (account_id, sort_last_seen NULLS FIRST, id) WHERE deleted_at IS NULL"""

# Resend Invite rewrites the expiry and sent time of every invitation it sends, set-wise (tens
# of thousands of rows). PostgreSQL writes an UPDATE that changes no indexed column as a HOT
# update (a new row version on the same page and no new entry in any of the table's indexes)
# when the page has room: so its state index leaves those times out (SQLite's covers them, and
# SQLite rewrites only the indexes of the columns that change), and memberships keep a quarter
# of each page free. Measured on 30,000 of 100,000 rows: 0.35-0.57 s instead of 4.8-7.4 s,
# 62,000 buffers instead of 1.28 million.
PG_STATE_INDEX = """CREATE INDEX IF NOT EXISTS ix_memberships_pg_live_state
    ON memberships (account_id, invite_state, sort_name, id) WHERE deleted_at IS NULL"""
PG_FILLFACTOR = "ALTER TABLE memberships SET (fillfactor = 75)"

PG_SORT_KEYS_INSERT = """CREATE TRIGGER memberships_sort_keys BEFORE INSERT ON memberships
        FOR EACH ROW WHEN (NEW.sort_name IS NULL) EXECUTE FUNCTION memberships_sort_keys()"""
PG_SORT_KEYS_UPDATE = """CREATE TRIGGER memberships_sort_keys_user BEFORE UPDATE OF user_id
        ON memberships FOR EACH ROW EXECUTE FUNCTION memberships_sort_keys()"""

POSTGRESQL = [
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    """CREATE TABLE user_search (
        user_id integer PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        body text NOT NULL)""",
    "CREATE INDEX ix_user_search_trgm ON user_search USING gin (body gin_trgm_ops)",
    # Statement-level triggers with transition tables: a set-wise import stays set-wise.
    """CREATE FUNCTION user_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO user_search (user_id, body)
        SELECT id, lower(name) || ' ' || email FROM new_users;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER user_search_insert AFTER INSERT ON users
        REFERENCING NEW TABLE AS new_users FOR EACH STATEMENT
        EXECUTE FUNCTION user_search_insert()""",
    """CREATE OR REPLACE FUNCTION user_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE user_search s SET body = lower(n.name) || ' ' || n.email
        FROM new_users n
        WHERE s.user_id = n.id AND s.body IS DISTINCT FROM lower(n.name) || ' ' || n.email;
        UPDATE memberships m SET sort_name = lower(n.name), sort_email = n.email
        FROM new_users n
        WHERE m.user_id = n.id AND (m.sort_name IS DISTINCT FROM lower(n.name)
            OR m.sort_email IS DISTINCT FROM n.email);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER user_search_update AFTER UPDATE ON users
        REFERENCING NEW TABLE AS new_users FOR EACH STATEMENT
        EXECUTE FUNCTION user_search_update()""",
    """CREATE OR REPLACE FUNCTION memberships_sort_keys() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        SELECT lower(name), email INTO NEW.sort_name, NEW.sort_email
        FROM users WHERE id = NEW.user_id;
        RETURN NEW;
    END $$""",
    # Like SQLite's, the insert trigger skips rows that bring their keys (the CSV import's
    # INSERT ... SELECT): a PL/pgSQL call and a users look-up per row otherwise.
    PG_SORT_KEYS_INSERT,
    PG_SORT_KEYS_UPDATE,
    PG_SEEN_INDEX,
    PG_STATE_INDEX,
    PG_FILLFACTOR,
    # Rows that existed before the triggers (migrating a filled database).
    """INSERT INTO user_search (user_id, body)
        SELECT id, lower(name) || ' ' || email FROM users ON CONFLICT (user_id) DO NOTHING""",
    """UPDATE memberships m SET sort_name = lower(u.name), sort_email = u.email
        FROM users u WHERE u.id = m.user_id""",
]

POSTGRESQL_DROP = [
    "DROP INDEX IF EXISTS ix_memberships_pg_live_seen",
    "DROP INDEX IF EXISTS ix_memberships_pg_live_state",
    "ALTER TABLE IF EXISTS memberships RESET (fillfactor)",
    "DROP TRIGGER IF EXISTS memberships_sort_keys_user ON memberships",
    "DROP TRIGGER IF EXISTS memberships_sort_keys ON memberships",
    "DROP FUNCTION IF EXISTS memberships_sort_keys()",
    "DROP TRIGGER IF EXISTS user_search_update ON users",
    "DROP FUNCTION IF EXISTS user_search_update()",
    "DROP TRIGGER IF EXISTS user_search_insert ON users",
    "DROP FUNCTION IF EXISTS user_search_insert()",
    "DROP TABLE IF EXISTS user_search",
]

# SQLite plans without statistics assume every "=" is selective, so "account_id = ?" looks
# cheap and a search would scan the whole account. These planner statistics describe the
# case the list is built for (100,000 users per account; about 3 in 100 per group) and pin
# the good plans, as SQLite's documentation suggests ("Manual Control Of Query Plans Using
# SQLITE_STAT Tables"). A later ANALYZE replaces them with measured ones.
ROWS = 1_000_000
ROWS_PER_VALUE = {
    "memberships": {"account_id": 100_000, "user_id": 1, "id": 1, "invite_state": 33_000,
                    "sort_name": 2, "sort_email": 1, "sort_last_seen": 2},
    "group_members": {"group_id": 3_000, "membership_id": 1},
}


def _planner_stats(bind: sa.Connection) -> None:
    bind.exec_driver_sql("ANALYZE sqlite_schema")  # creates sqlite_stat1, analyses nothing
    for table, per_value in ROWS_PER_VALUE.items():
        bind.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = ?", (table,))
        for index in bind.exec_driver_sql(f"PRAGMA index_list('{table}')").all():
            columns = [c[2] for c in bind.exec_driver_sql(f"PRAGMA index_info('{index[1]}')")]
            stat, rows = [ROWS], ROWS
            for column in columns:
                # A column not listed (deleted_at: nearly all NULL) does not narrow the rows.
                rows = min(rows, per_value.get(column, rows))
                stat.append(rows)
            bind.exec_driver_sql(
                "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)",
                (table, index[1], " ".join(map(str, stat))),
            )
    bind.exec_driver_sql("ANALYZE sqlite_schema")  # reload the statistics


# Shown to `include_name` so autogenerate neither drops nor re-creates these.
HIDDEN_TABLES = ("user_search",)


def create(bind: sa.Connection) -> None:
    """Create the search table and the triggers for this database (idempotent: drops first)."""
    drop(bind)
    for statement in SQLITE if bind.dialect.name == "sqlite" else POSTGRESQL:
        bind.exec_driver_sql(statement)
    if bind.dialect.name == "sqlite":
        _planner_stats(bind)


def drop(bind: sa.Connection) -> None:
    """Drop what ``create`` made."""
    for statement in SQLITE_DROP if bind.dialect.name == "sqlite" else POSTGRESQL_DROP:
        bind.exec_driver_sql(statement)


def include_name(name, type_, _parent_names) -> bool:
    """Alembic hook: leave the search objects (FTS5's shadow tables, PostgreSQL's own indexes)
    out of comparisons."""
    if type_ == "index" and name in ("ix_memberships_pg_live_seen", "ix_memberships_pg_live_state"):
        return False
    return not (type_ == "table" and name and name.startswith(HIDDEN_TABLES))


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic hook: an index the models create on one database only (``ddl_if``: the covering
    state index is SQLite's, PostgreSQL has PG_STATE_INDEX) is compared where it exists."""
    return not (type_ == "index" and not reflected and compare_to is None
                and getattr(obj, "_ddl_if", None) is not None)


@sa.event.listens_for(Base.metadata, "after_create")
def _after_create(_metadata, connection, **_kw):
    create(connection)


@sa.event.listens_for(Base.metadata, "before_drop")
def _before_drop(_metadata, connection, **_kw):
    drop(connection)
