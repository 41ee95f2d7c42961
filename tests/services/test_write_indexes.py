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
        "outbox_messages": {"ix_outbox_messages_account_id"}}


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
