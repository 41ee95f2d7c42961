"""memberships.invited_name and invited_phone: what an account typed for someone who is
already a person elsewhere, shown until they accept the invitation

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 22:20:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN (SQLite too): a batch copy of memberships would trip its triggers.
    op.add_column("memberships", sa.Column("invited_name", sa.String(length=200), nullable=True))
    op.add_column("memberships", sa.Column("invited_phone", sa.String(length=32), nullable=True))


def downgrade():
    op.drop_column("memberships", "invited_phone")
    op.drop_column("memberships", "invited_name")
