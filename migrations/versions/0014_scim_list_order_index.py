"""SCIM: an index that walks one account's memberships in id order (the provider's list pages)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 22:08:55.766645

"""
from alembic import op

from portal.models import search

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    # A plain CREATE INDEX: a batch operation would recreate memberships and lose its triggers.
    op.create_index('ix_memberships_scim_order', 'memberships', ['account_id', 'id', 'deleted_at'],
                    unique=False)
    if op.get_bind().dialect.name == "sqlite":
        search._planner_stats(op.get_bind())  # the pinned statistics cover the new index too


def downgrade():
    op.drop_index('ix_memberships_scim_order', table_name='memberships')
