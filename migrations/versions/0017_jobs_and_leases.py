"""jobs: background work under short renewable leases; outbox_messages.lease_until;
import_jobs.run_id (the run of an import)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 00:10:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.DateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("phase", sa.String(length=64), nullable=True),
        sa.Column("fraction", sa.Float(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_due", "jobs", ["state", "run_after"])
    op.create_index(op.f("ix_jobs_account_id"), "jobs", ["account_id"])
    op.add_column("outbox_messages", sa.Column("lease_until", sa.DateTime(), nullable=True))
    op.add_column("import_jobs", sa.Column("run_id", sa.Integer(), nullable=True))
    # An import running in a web thread before the upgrade died with its process.
    op.execute("UPDATE import_jobs SET state = 'failed', "
               "error = 'The import was interrupted; nothing was written. Start it again.' "
               "WHERE state = 'running'")


def downgrade():
    op.drop_column("import_jobs", "run_id")
    op.drop_column("outbox_messages", "lease_until")
    op.drop_index(op.f("ix_jobs_account_id"), table_name="jobs")
    op.drop_index("ix_jobs_due", table_name="jobs")
    op.drop_table("jobs")
