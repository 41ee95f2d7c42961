"""Users list: sort keys on memberships (kept by triggers) and trigram search

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 03:47:37.104411

"""
from alembic import op
import sqlalchemy as sa

from portal.models import search


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

LIVE = {"sqlite_where": sa.text('deleted_at IS NULL'), "postgresql_where": sa.text('deleted_at IS NULL')}


def upgrade():
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sort_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('sort_email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('sort_last_seen', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_memberships_live_email', ['account_id', 'sort_email', 'id'], unique=False, **LIVE)
        batch_op.create_index('ix_memberships_live_name', ['account_id', 'sort_name', 'id'], unique=False, **LIVE)
        batch_op.create_index('ix_memberships_live_seen', ['account_id', 'sort_last_seen', 'id'], unique=False, **LIVE)
        batch_op.create_index('ix_memberships_live_state', ['account_id', 'invite_state', 'sort_name', 'id'], unique=False, **LIVE)
    # After the table changes: a batch recreate of memberships would drop its triggers.
    search.create(op.get_bind())


def downgrade():
    search.drop(op.get_bind())
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index('ix_memberships_live_state', **LIVE)
        batch_op.drop_index('ix_memberships_live_seen', **LIVE)
        batch_op.drop_index('ix_memberships_live_name', **LIVE)
        batch_op.drop_index('ix_memberships_live_email', **LIVE)
        batch_op.drop_column('sort_last_seen')
        batch_op.drop_column('sort_email')
        batch_op.drop_column('sort_name')
