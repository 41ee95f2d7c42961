"""Fewer index entries per written row: the audit trail's person links lead one index each
(subject, account, created_at, id) and (actor, ...) instead of two (account first, and the
id alone); on PostgreSQL those, and memberships' deleted_at and deleted_by_id, are partial
(IS NOT NULL): an import's rows and a purge's erased links enter none of them

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 10:10:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def _not_null(column: str) -> dict:
    return {"postgresql_where": sa.text(f"{column} IS NOT NULL")}


def upgrade():
    for link in ("subject", "actor"):
        op.create_index(f"ix_audit_events_{link}", "audit_events",
                        [f"{link}_user_id", "account_id", "created_at", "id"], unique=False,
                        **_not_null(f"{link}_user_id"))
        op.drop_index(f"ix_audit_events_account_{link}", table_name="audit_events")
        op.drop_index(f"ix_audit_events_{link}_user_id", table_name="audit_events")
    if op.get_bind().dialect.name == "postgresql":
        for column in ("deleted_at", "deleted_by_id"):
            op.drop_index(f"ix_memberships_{column}", table_name="memberships")
            op.create_index(f"ix_memberships_{column}", "memberships", [column], unique=False,
                            **_not_null(column))


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for column in ("deleted_at", "deleted_by_id"):
            op.drop_index(f"ix_memberships_{column}", table_name="memberships")
            op.create_index(f"ix_memberships_{column}", "memberships", [column], unique=False)
    for link in ("subject", "actor"):
        op.create_index(f"ix_audit_events_{link}_user_id", "audit_events", [f"{link}_user_id"],
                        unique=False)
        op.create_index(f"ix_audit_events_account_{link}", "audit_events",
                        ["account_id", f"{link}_user_id", "created_at", "id"], unique=False)
        op.drop_index(f"ix_audit_events_{link}", table_name="audit_events")
