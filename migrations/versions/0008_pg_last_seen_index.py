"""PostgreSQL: an index in the Users list's "last seen" order (never seen = oldest)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 05:50:00

"""
from alembic import op

from portal.models import search

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(search.PG_SEEN_INDEX)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_memberships_pg_live_seen")
