"""SCIM: a partial index of the links a SCIM DELETE stamped (which deleted users SCIM hides)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 00:05:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

REMOVED = sa.text("removed_at IS NOT NULL")


def upgrade():
    op.create_index('ix_scim_user_links_removed', 'scim_user_links',
                    ['membership_id', 'removed_at'], unique=False,
                    sqlite_where=REMOVED, postgresql_where=REMOVED)


def downgrade():
    op.drop_index('ix_scim_user_links_removed', table_name='scim_user_links')
