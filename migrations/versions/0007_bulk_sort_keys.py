"""SQLite: the memberships sort-key trigger skips inserts that bring the keys (bulk import)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 05:10:00

"""
from alembic import op

from portal.models import search

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _recreate_sort_key_trigger():
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return  # PostgreSQL's trigger fills the row before it is written: nothing to skip.
    bind.exec_driver_sql("DROP TRIGGER IF EXISTS memberships_sort_keys")
    bind.exec_driver_sql(next(s for s in search.SQLITE if "TRIGGER memberships_sort_keys" in s))


def upgrade():
    _recreate_sort_key_trigger()


def downgrade():
    # The condition only skips inserts that already carry the keys, which older code never
    # writes; the trigger stays as it is.
    pass
