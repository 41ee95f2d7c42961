"""Indexes nothing reads, which every import, sign-in and purge kept: users (name, email) and
users (last_seen_at) (the lists sort and search by the sort keys of memberships and by
user_search), outbox_messages (account_id) (ix_outbox_messages_account_state starts with it);
on PostgreSQL memberships' NULLS LAST last-seen index (the list sorts NULLS FIRST: its index
there is ix_memberships_pg_live_seen)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 07:10:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

LIVE = {"postgresql_where": sa.text('deleted_at IS NULL')}


def upgrade():
    op.drop_index("ix_users_name_email", table_name="users")
    op.drop_index("ix_users_last_seen_at", table_name="users")
    op.drop_index("ix_outbox_messages_account_id", table_name="outbox_messages")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_memberships_live_seen", table_name="memberships")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_memberships_live_seen", "memberships",
                        ["account_id", "sort_last_seen", "id"], unique=False, **LIVE)
    op.create_index("ix_outbox_messages_account_id", "outbox_messages", ["account_id"],
                    unique=False)
    op.create_index("ix_users_last_seen_at", "users", ["last_seen_at"], unique=False)
    op.create_index("ix_users_name_email", "users", ["name", "email"], unique=False)
