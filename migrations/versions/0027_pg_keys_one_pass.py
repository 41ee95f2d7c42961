"""PostgreSQL: the key triggers of inserts check each key in one pass (wanted, found, and the
parents of other transactions, which a second statement locks by id) instead of three; a
database at 0023-0026 gets the new bodies (pg_keys.create: the same checks)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-02 10:20:00

"""
from alembic import op

from portal.models import pg_keys

# revision identifiers, used by Alembic.
revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade():
    pg_keys.create(op.get_bind())


def downgrade():
    # Nothing to undo: the checks are the same (0023's downgrade restores the constraints).
    pass
