"""Import history: user_imports, and the import that wrote each membership, group membership
and group (Undo import)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 21:35:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=False),
        sa.Column("report_csv", sa.LargeBinary(), nullable=True),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.Column("undo_result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["undone_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_imports_account_created", "user_imports",
                    ["account_id", "created_at"])
    op.create_index(op.f("ix_user_imports_membership_id"), "user_imports", ["membership_id"])
    op.create_index(op.f("ix_user_imports_undone_by_id"), "user_imports", ["undone_by_id"])
    # A plain ADD COLUMN (no table copy): the triggers on memberships stay as they are.
    for table in ("memberships", "group_members", "groups"):
        op.add_column(table, sa.Column("import_id", sa.Integer(), nullable=True))


def downgrade():
    for table in ("groups", "group_members", "memberships"):
        op.drop_column(table, "import_id")
    op.drop_index(op.f("ix_user_imports_undone_by_id"), table_name="user_imports")
    op.drop_index(op.f("ix_user_imports_membership_id"), table_name="user_imports")
    op.drop_index("ix_user_imports_account_created", table_name="user_imports")
    op.drop_table("user_imports")
