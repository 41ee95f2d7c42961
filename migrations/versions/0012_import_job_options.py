"""Import jobs: the encoding chosen under Read as, Update existing users, the reports kept

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 21:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("import_jobs") as batch:
        batch.add_column(sa.Column("read_as", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("update_existing", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("rejected_csv", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("report_csv", sa.LargeBinary(), nullable=True))


def downgrade():
    with op.batch_alter_table("import_jobs") as batch:
        batch.drop_column("report_csv")
        batch.drop_column("rejected_csv")
        batch.drop_column("update_existing")
        batch.drop_column("read_as")
