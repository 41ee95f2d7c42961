"""PostgreSQL: the memberships sort-key trigger skips inserts that bring the keys (bulk import)

SQLite's has done so since 0007. The insert trigger gets the condition; changing a
membership's person (user_id) still copies that person's keys, through a trigger of its own.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 00:20:00

"""
from alembic import op

from portal.models import search

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

OLD = """CREATE TRIGGER memberships_sort_keys BEFORE INSERT OR UPDATE OF user_id ON memberships
    FOR EACH ROW EXECUTE FUNCTION memberships_sort_keys()"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    # 0006 builds the triggers from today's portal.models.search: drop whichever exist.
    op.execute("DROP TRIGGER IF EXISTS memberships_sort_keys_user ON memberships")
    op.execute("DROP TRIGGER IF EXISTS memberships_sort_keys ON memberships")
    op.execute(search.PG_SORT_KEYS_INSERT)
    op.execute(search.PG_SORT_KEYS_UPDATE)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS memberships_sort_keys_user ON memberships")
    op.execute("DROP TRIGGER IF EXISTS memberships_sort_keys ON memberships")
    op.execute(OLD)
