"""The audit page: indexes that page one account's trail newest first, by filter (keyset)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 00:10:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_audit_events_account_time', 'audit_events',
                    ['account_id', 'created_at', 'id'], unique=False)
    op.drop_index('ix_audit_events_account_subject', table_name='audit_events')
    op.create_index('ix_audit_events_account_subject', 'audit_events',
                    ['account_id', 'subject_user_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_audit_events_account_actor', 'audit_events',
                    ['account_id', 'actor_user_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_audit_events_account_action', 'audit_events',
                    ['account_id', 'action', 'created_at', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_audit_events_account_action', table_name='audit_events')
    op.drop_index('ix_audit_events_account_actor', table_name='audit_events')
    op.drop_index('ix_audit_events_account_subject', table_name='audit_events')
    op.create_index('ix_audit_events_account_subject', 'audit_events',
                    ['account_id', 'subject_user_id', 'created_at'], unique=False)
    op.drop_index('ix_audit_events_account_time', table_name='audit_events')
