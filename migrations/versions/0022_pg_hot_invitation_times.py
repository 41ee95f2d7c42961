"""PostgreSQL: the state index leaves the invitation times out and memberships keep a quarter
of each page free, so Resend Invite's mass update of those times is a HOT update (no new index
entries in the table's 13 indexes); SQLite keeps its covering index

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 04:20:00

"""
import sqlalchemy as sa
from alembic import op

from portal.models import search

# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

LIVE = {"postgresql_where": sa.text('deleted_at IS NULL')}


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_memberships_live_state")
    op.execute(search.PG_STATE_INDEX)
    # New pages only: existing ones gain room as autovacuum frees the old row versions.
    op.execute(search.PG_FILLFACTOR)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE memberships RESET (fillfactor)")
    op.execute("DROP INDEX IF EXISTS ix_memberships_pg_live_state")
    op.create_index("ix_memberships_live_state", "memberships",
                    ["account_id", "invite_state", "sort_name", "id", "invite_expires_at",
                     "invite_sent_at"], unique=False, **LIVE)
