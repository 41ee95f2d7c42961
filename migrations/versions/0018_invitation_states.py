"""memberships.invite_expires_at and invite_sent_at: where each invitation stands (queued,
sent, refused, accepted, expired), filtered through the state index; Outgoing mail by
account and state

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 00:10:00

"""
import sqlalchemy as sa
from alembic import op

from portal.models import search

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

LIVE = {"sqlite_where": sa.text('deleted_at IS NULL'),
        "postgresql_where": sa.text('deleted_at IS NULL')}


def upgrade():
    # Plain ADD COLUMN (SQLite too): a batch copy of memberships would trip its triggers.
    op.add_column("memberships", sa.Column("invite_expires_at", sa.DateTime(), nullable=True))
    op.add_column("memberships", sa.Column("invite_sent_at", sa.DateTime(), nullable=True))
    # Invitations already out: their newest link's expiry, and sent when its mail went out.
    op.execute(
        "UPDATE memberships SET invite_expires_at = (SELECT max(t.expires_at) FROM action_tokens t"
        " WHERE t.user_id = memberships.user_id AND t.account_id = memberships.account_id"
        " AND t.purpose = 'invite') WHERE invite_state <> 'active'"
    )
    op.execute(
        "UPDATE memberships SET invite_sent_at = (SELECT max(o.sent_at) FROM outbox_messages o"
        " WHERE o.membership_id = memberships.id AND o.kind = 'invite' AND o.state = 'sent')"
        " WHERE invite_state = 'invited'"
    )
    op.drop_index("ix_memberships_live_state", table_name="memberships", **LIVE)
    op.create_index("ix_memberships_live_state", "memberships",
                    ["account_id", "invite_state", "sort_name", "id", "invite_expires_at",
                     "invite_sent_at"], unique=False, **LIVE)
    op.create_index("ix_outbox_messages_account_state", "outbox_messages",
                    ["account_id", "state", "id"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        search._planner_stats(op.get_bind())  # the pinned statistics cover the new index too


def downgrade():
    op.drop_index("ix_outbox_messages_account_state", table_name="outbox_messages")
    op.drop_index("ix_memberships_live_state", table_name="memberships", **LIVE)
    op.create_index("ix_memberships_live_state", "memberships",
                    ["account_id", "invite_state", "sort_name", "id"], unique=False, **LIVE)
    op.drop_column("memberships", "invite_sent_at")
    op.drop_column("memberships", "invite_expires_at")
