"""PostgreSQL: the foreign keys of the bulk-written tables (and those referencing users and
memberships) are checked once per statement by triggers instead of row by row (pg_keys):
an import ran 14 parent look-ups a person, a purge 13 empty child look-ups a person

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 07:00:00

"""
from alembic import op

from portal.models import pg_keys

# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    pg_keys.create(op.get_bind())


def downgrade():
    pg_keys.restore(op.get_bind())
