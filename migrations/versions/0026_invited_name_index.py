"""memberships (account_id) WHERE invited_name IS NOT NULL: a Users list search tests the few
memberships with a name of their own by their sort keys without reading the whole account (it
was a sequential scan of 100,000 memberships on PostgreSQL)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02 10:05:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

NAMED = sa.text("invited_name IS NOT NULL")


def upgrade():
    op.create_index("ix_memberships_invited_name", "memberships", ["account_id"], unique=False,
                    sqlite_where=NAMED, postgresql_where=NAMED)


def downgrade():
    op.drop_index("ix_memberships_invited_name", table_name="memberships")
