"""SCIM provisioning: per-account bearer tokens, and what a provider keeps about users and groups."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import utcnow
from portal.models.membership import Membership


class ScimToken(Base):
    """A bearer token an identity provider uses to provision one account (stored hashed)."""

    __tablename__ = "scim_tokens"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    # Shown in Settings › Provisioning and in the audit trail of every change made with it.
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    # SHA-256 of the random token; the token itself is shown once and never stored.
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    # Whether people this token creates get the invitation e-mail (single sign-on: often not).
    send_invitations: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    created_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    last_used_at: so.Mapped[datetime | None]
    revoked_at: so.Mapped[datetime | None]


class ScimUserLink(Base):
    """What SCIM keeps about one membership: the provider's externalId, a SCIM DELETE."""

    __tablename__ = "scim_user_links"
    # The few links a SCIM DELETE stamped: "is this deleted membership hidden?" probes this
    # small index instead of every link (a full provider sync pass on PostgreSQL hashed all
    # 100,000 links on every page).
    __table_args__ = (
        sa.Index("ix_scim_user_links_removed", "membership_id", "removed_at",
                 sqlite_where=sa.text("removed_at IS NOT NULL"),
                 postgresql_where=sa.text("removed_at IS NOT NULL")),
    )

    membership_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("memberships.id", ondelete="CASCADE"), primary_key=True
    )
    # The provider's own identifier (Entra's objectId, Okta's id): case-exact, not unique.
    external_id: so.Mapped[str | None] = so.mapped_column(sa.String(255), index=True)
    # The membership's ``deleted_at`` when a SCIM DELETE removed it: while the two are equal
    # the user is gone for SCIM (404), though still restorable from Deleted users.
    removed_at: so.Mapped[datetime | None]
    modified_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class ScimGroupLink(Base):
    """What SCIM keeps about one group: the provider's externalId."""

    __tablename__ = "scim_group_links"

    group_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    external_id: so.Mapped[str | None] = so.mapped_column(sa.String(255), index=True)
    modified_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


# A provider lists an account's users in id order, 100 a page, to the last page: this index
# walks one account in that order (no sort of the whole account per page) and carries the
# deletion stamp the list tests for each row.
sa.Index("ix_memberships_scim_order", Membership.account_id, Membership.id, Membership.deleted_at)
