"""The tables every import, sign-in and purge writes carry no index that nothing reads (issue 13:
import >= 25,000 rows/s on PostgreSQL; migration 0024): users (name, email) and users
(last_seen_at) (the lists and the member picker read the sort keys of memberships, search
reads user_search), outbox_messages (account_id) (ix_outbox_messages_account_state starts
with it) and, on PostgreSQL, memberships' NULLS LAST last-seen index (the list sorts never-seen
people first, through ix_memberships_pg_live_seen). On both databases.
"""
import sqlalchemy as sa

from portal.extensions import db

GONE = {"users": {"ix_users_name_email", "ix_users_last_seen_at"},
        "outbox_messages": {"ix_outbox_messages_account_id"},
        # Migration 0025: one index per person link, the link first (audit page, purge and
        # csv_check alike read it).
        "audit_events": {"ix_audit_events_account_subject", "ix_audit_events_subject_user_id",
                         "ix_audit_events_account_actor", "ix_audit_events_actor_user_id"}}


def _indexes(table: str) -> set[str]:
    if db.engine.dialect.name == "sqlite":
        return {row[1] for row in db.session.execute(sa.text(f"PRAGMA index_list('{table}')"))}
    return set(db.session.scalars(sa.text(
        "SELECT indexname FROM pg_indexes WHERE tablename = :table"), {"table": table}))


def test_the_written_tables_keep_only_indexes_something_reads(app):
    for table, gone in GONE.items():
        assert not _indexes(table) & gone, table
    # What reads them instead is there.
    assert "ix_outbox_messages_account_state" in _indexes("outbox_messages")
    seen = {"ix_memberships_live_seen", "ix_memberships_pg_live_seen"} & _indexes("memberships")
    # One last-seen index in the list's order (never seen first) per database.
    assert seen == ({"ix_memberships_live_seen"} if db.engine.dialect.name == "sqlite"
                    else {"ix_memberships_pg_live_seen"})


def _index_columns(table: str, index: str) -> list[str]:
    if db.engine.dialect.name == "sqlite":
        return [row[2] for row in db.session.execute(sa.text(f"PRAGMA index_info('{index}')"))]
    return list(db.session.scalars(sa.text(
        "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n) ON true "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE c.relname = :index ORDER BY k.n"), {"index": index}))


def _predicate(index: str) -> str | None:
    """The WHERE clause of an index (None: the whole table)."""
    if db.engine.dialect.name == "sqlite":
        sql = db.session.scalar(sa.text("SELECT sql FROM sqlite_master WHERE name = :index"),
                                {"index": index})
        return sql.split(" WHERE ", 1)[1] if " WHERE " in sql else None
    return db.session.scalar(sa.text(
        "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :index"), {"index": index})


def test_each_audit_link_has_one_index_that_starts_with_the_person(app):
    for link in ("subject", "actor"):
        assert _index_columns("audit_events", f"ix_audit_events_{link}") == [
            f"{link}_user_id", "account_id", "created_at", "id"]


PARTIAL = {"ix_audit_events_subject": "subject_user_id", "ix_audit_events_actor": "actor_user_id",
           "ix_memberships_deleted_at": "deleted_at",
           "ix_memberships_deleted_by_id": "deleted_by_id"}


def test_postgresql_leaves_null_links_and_live_memberships_out_of_their_indexes(app):
    """On PostgreSQL an imported membership (never deleted) and an erased person's events
    (their link set NULL by the purge) enter none of these indexes; SQLite keeps them whole
    (it writes only the indexes of the columns an UPDATE changes)."""
    for index, column in PARTIAL.items():
        assert _predicate(index) == (None if db.engine.dialect.name == "sqlite"
                                     else f"({column} IS NOT NULL)"), index
