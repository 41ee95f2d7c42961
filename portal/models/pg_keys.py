"""PostgreSQL: the foreign keys of the bulk-written tables, checked once per statement.

PostgreSQL checks a foreign key row by row: each inserted row runs one look-up of its parent
(SELECT ... FOR KEY SHARE) per key, and each deleted parent one look-up per referencing
table. A CSV import of 100,000 people ran 1.4 million of them (about 14 a person: memberships,
group memberships, invitation links, the outbox, the audit trail, the search table), a third
of the import's server time; purging 100,000 people ran 13 look-ups per person that found
nothing, 45% of the purge.

So on PostgreSQL these keys (``KEYS``: every key of the tables an import writes, and every
key that references users or memberships) are enforced by triggers that do the same work set-
wise, over the statement's transition table:

* an INSERT into a child checks its new rows' keys with one join per key, which also
  collects the parents of other transactions; those are then locked by id FOR KEY SHARE as
  PostgreSQL's own check does (a parent deleted concurrently is either waited for or found
  missing); those this transaction inserted itself are not: no other transaction sees them,
  so none can delete them (the import's users and memberships; locking them wrote each row
  again, and an import needs no second statement at all);
* an UPDATE that changes a key checks that row (a row-level trigger whose WHEN clause skips
  every other update, as PostgreSQL's own check does);
* a DELETE of parents cascades or sets NULL with one statement per referencing table;
* TRUNCATE of a parent empties the referencing tables too (what TRUNCATE ... CASCADE does;
  the tests empty their database that way);
* a parent's id never changes (refused).

The models keep their ForeignKeys (SQLite enforces them natively; SQLAlchemy joins by them);
``include_object`` leaves these out of Alembic's comparison on PostgreSQL, where they are
triggers. Created after ``metadata.create_all`` and by migration 0023. The triggers run with
READ COMMITTED (the portal's isolation level): each statement inside them sees what other
transactions committed, as the deleting side must.
"""
import sqlalchemy as sa

from portal.models.base import Base

# The tables a CSV import (and Resend Invite) writes row for row.
BULK_WRITTEN = ("memberships", "group_members", "action_tokens", "outbox_messages",
                "audit_events", "user_search")
# Purge and deletion remove these set-wise.
BULK_DELETED = ("users", "memberships")

ACTIONS = {"CASCADE": "cascade", "SET NULL": "set null"}


class Key:
    """One foreign key: child.column -> parent.id."""

    def __init__(self, child: str, column: str, parent: str, on_delete: str, name: str):
        self.child, self.column, self.parent = child, column, parent
        self.on_delete, self.name = on_delete, name

    def __repr__(self):
        return f"Key({self.name}: {self.child}.{self.column} -> {self.parent}, {self.on_delete})"


def _keys() -> list[Key]:
    keys = []
    for table in Base.metadata.sorted_tables:
        for fk in sorted(table.foreign_key_constraints, key=lambda fk: fk.name or ""):
            parent = fk.referred_table.name
            if table.name in BULK_WRITTEN or parent in BULK_DELETED:
                (column,) = fk.column_keys
                # Each of these cascades or sets NULL; a key that refuses the delete (RESTRICT,
                # NO ACTION) would need a trigger that refuses: add it here first.
                keys.append(Key(table.name, column, parent, ACTIONS[(fk.ondelete or "").upper()],
                                fk.name))
    # The search table (portal/models/search.py) is not in the models' metadata.
    keys.append(Key("user_search", "user_id", "users", "cascade", "user_search_user_id_fkey"))
    return keys


KEYS = _keys()
NAMES = frozenset(key.name for key in KEYS)


def _violation(key: Key, what: str) -> str:
    return (f"RAISE EXCEPTION 'insert or update on table \"{key.child}\" violates foreign key "
            f"constraint \"{key.name}\"' USING ERRCODE = 'foreign_key_violation', "
            f"DETAIL = format('Key ({key.column})=(%s) is not present in table \"{key.parent}\".', "
            f"{what}), TABLE = '{key.child}', CONSTRAINT = '{key.name}';")


def _check_new(child: str, keys: list[Key]) -> list[str]:
    """Statement-level AFTER INSERT on a child: each key's new values exist (one join), and the
    parents of other transactions among them are locked (by id, a second statement)."""
    body = []
    for key in keys:
        body.append(f"""
        -- One pass tells how many parents are wanted, found, and found of other transactions:
        -- an import's parents are nearly all its own (no second pass then), Resend Invite's
        -- all others'. (Three passes before: count, lock others', count own.)
        SELECT count(*), count(p.id), array_agg(p.id) FILTER (WHERE p.xmin <> mine)
        INTO wanted, found, others
        FROM (SELECT DISTINCT n.{key.column} AS id FROM new_rows n
              WHERE n.{key.column} IS NOT NULL) k
        LEFT JOIN {key.parent} p ON p.id = k.id;
        IF others IS NOT NULL THEN
            -- Locked as PostgreSQL's own check locks them: one deleted meanwhile is waited
            -- for, then missing (the count drops).
            SELECT found - cardinality(others) + count(*) INTO found FROM (
                SELECT 1 FROM {key.parent} p WHERE p.id = ANY(others)
                FOR KEY SHARE OF p) locked;
        END IF;
        IF found < wanted THEN
            SELECT n.{key.column} INTO missing FROM new_rows n
            WHERE n.{key.column} IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM {key.parent} p WHERE p.id = n.{key.column}) LIMIT 1;
            {_violation(key, "missing")}
        END IF;""")
    return [
        f"""CREATE FUNCTION pg_keys_{child}_new() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE wanted bigint; found bigint; missing bigint; others integer[];
            mine xid := xid(pg_current_xact_id());
        BEGIN {''.join(body)}
            RETURN NULL;
        END $$""",
        f"""CREATE TRIGGER pg_keys_{child}_new AFTER INSERT ON {child}
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION pg_keys_{child}_new()""",
    ]


def _check_changed(child: str, keys: list[Key]) -> list[str]:
    """Row-level AFTER UPDATE OF the key columns, only when one changes to a value."""
    body = []
    for key in keys:
        body.append(f"""
        IF NEW.{key.column} IS DISTINCT FROM OLD.{key.column} AND NEW.{key.column} IS NOT NULL
        THEN
            PERFORM 1 FROM {key.parent} p WHERE p.id = NEW.{key.column} FOR KEY SHARE OF p;
            IF NOT FOUND THEN
                {_violation(key, f"NEW.{key.column}")}
            END IF;
        END IF;""")
    columns = ", ".join(key.column for key in keys)
    changed = " OR ".join(f"NEW.{key.column} IS DISTINCT FROM OLD.{key.column}" for key in keys)
    return [
        f"""CREATE FUNCTION pg_keys_{child}_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN {''.join(body)}
            RETURN NULL;
        END $$""",
        f"""CREATE TRIGGER pg_keys_{child}_changed AFTER UPDATE OF {columns} ON {child}
        FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION pg_keys_{child}_changed()""",
    ]


def _parent_gone(parent: str, keys: list[Key]) -> list[str]:
    """Statement-level AFTER DELETE on a parent: one statement per referencing key; TRUNCATE
    truncates the referencing tables; the id never changes."""
    body = []
    for key in keys:
        gone = f"{key.column} IN (SELECT o.id FROM old_rows o)"
        if key.on_delete == "cascade":
            body.append(f"DELETE FROM {key.child} WHERE {gone};")
        elif key.on_delete == "set null":
            body.append(f"UPDATE {key.child} SET {key.column} = NULL WHERE {gone};")
        else:  # _keys() takes no other
            raise ValueError(key)
    # Emptied as TRUNCATE ... CASCADE would (TRUNCATE itself cannot run here: the tables
    # truncated with the parent are in use by that statement).
    children = " ".join(f"DELETE FROM {child};" for child in sorted({key.child for key in keys}))
    return [
        f"""CREATE FUNCTION pg_keys_{parent}_gone() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {chr(10).join(body)}
            RETURN NULL;
        END $$""",
        f"""CREATE TRIGGER pg_keys_{parent}_gone AFTER DELETE ON {parent}
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
        EXECUTE FUNCTION pg_keys_{parent}_gone()""",
        f"""CREATE FUNCTION pg_keys_{parent}_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {children}
            RETURN NULL;
        END $$""",
        f"""CREATE TRIGGER pg_keys_{parent}_truncated AFTER TRUNCATE ON {parent}
        FOR EACH STATEMENT EXECUTE FUNCTION pg_keys_{parent}_truncated()""",
        f"""CREATE TRIGGER pg_keys_{parent}_id BEFORE UPDATE OF id ON {parent}
        FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
        EXECUTE FUNCTION pg_keys_id_fixed()""",
    ]


ID_FIXED = """CREATE FUNCTION pg_keys_id_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the id of a row of "%" is referenced and never changes', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END $$"""


def _by(attribute: str) -> dict[str, list[Key]]:
    grouped: dict[str, list[Key]] = {}
    for key in KEYS:
        grouped.setdefault(getattr(key, attribute), []).append(key)
    return grouped


def statements() -> list[str]:
    """The DDL that turns KEYS into triggers (after ``drop_statements``)."""
    ddl = [f'ALTER TABLE {key.child} DROP CONSTRAINT IF EXISTS "{key.name}"' for key in KEYS]
    ddl.append(ID_FIXED)
    for child, keys in _by("child").items():
        ddl += _check_new(child, keys) + _check_changed(child, keys)
    for parent, keys in _by("parent").items():
        ddl += _parent_gone(parent, keys)
    return ddl


def drop_statements() -> list[str]:
    """Drop the triggers and their functions (CASCADE: the function's trigger with it)."""
    ddl = [f"DROP FUNCTION IF EXISTS pg_keys_{child}_{what}() CASCADE"
           for child in _by("child") for what in ("new", "changed")]
    ddl += [f"DROP FUNCTION IF EXISTS pg_keys_{parent}_{what}() CASCADE"
            for parent in _by("parent") for what in ("gone", "truncated")]
    ddl.append("DROP FUNCTION IF EXISTS pg_keys_id_fixed() CASCADE")
    return ddl


def _run(bind: sa.Connection, statements: list[str]) -> None:
    for statement in statements:
        # The driver reads "%" as a placeholder even without parameters.
        bind.exec_driver_sql(statement.replace("%", "%%"))


def create(bind: sa.Connection) -> None:
    """PostgreSQL: replace KEYS' constraints by the triggers (idempotent). SQLite: nothing."""
    if bind.dialect.name != "postgresql":
        return
    _run(bind, drop_statements() + statements())


def restore(bind: sa.Connection) -> None:
    """PostgreSQL: the constraints again instead of the triggers (migration 0023 downgrade)."""
    if bind.dialect.name != "postgresql":
        return
    _run(bind, drop_statements())
    for key in KEYS:
        bind.exec_driver_sql(
            f'ALTER TABLE {key.child} ADD CONSTRAINT "{key.name}" FOREIGN KEY ({key.column}) '
            f"REFERENCES {key.parent} (id) ON DELETE {key.on_delete.upper()}")


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic hook: a key of KEYS missing from the database is a trigger there (PostgreSQL)."""
    return not (type_ == "foreign_key_constraint" and name in NAMES and not reflected
                and compare_to is None)


@sa.event.listens_for(Base.metadata, "after_create")
def _after_create(_metadata, connection, **_kw):
    create(connection)


@sa.event.listens_for(Base.metadata, "before_drop")
def _before_drop(_metadata, connection, **_kw):
    if connection.dialect.name == "postgresql":
        _run(connection, drop_statements())
