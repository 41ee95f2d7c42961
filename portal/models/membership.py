"""Membership: a person inside an account, with a role, an invite state and a delete stamp."""
import enum
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.account import Account
from portal.models.base import Base
from portal.models.base import Timestamped
from portal.models.base import utcnow
from portal.models.user import User



class Role(enum.StrEnum):
    """What a membership may do in its account."""

    MEMBER = "member"
    ADMIN = "admin"


class InviteState(enum.StrEnum):
    """Where a membership's invitation stands."""

    INVITED = "invited"  # never signed in here
    INVITE_FAILED = "invite_failed"  # the mail server refused the address
    ACTIVE = "active"  # signed in (or joined with the password they had)


class Invitation(enum.StrEnum):
    """Where an invitation stands, as the Users list shows and filters it (``?invitation=``).

    Read from the stored state and two times (services/invitation_states.py): queued until
    its e-mail is delivered (or its link copied), then sent; refused when the mail server
    refused the address; accepted; expired when its link has run out unaccepted.
    """

    QUEUED = "queued"
    SENT = "sent"
    REFUSED = "refused"
    ACCEPTED = "accepted"
    EXPIRED = "expired"


def invitation_of(state: str, expires_at: datetime | None, sent_at: datetime | None,
                  now: datetime) -> Invitation | None:
    """Return where an invitation stands (None: never invited, e.g. single sign-on)."""
    if state == InviteState.ACTIVE:
        return Invitation.ACCEPTED
    if state == InviteState.INVITE_FAILED:
        return Invitation.REFUSED
    if expires_at is None:
        return None
    if expires_at <= now:
        return Invitation.EXPIRED
    return Invitation.QUEUED if sent_at is None else Invitation.SENT


# Partial indexes over live memberships only (both databases support them).
_LIVE = sa.text("deleted_at IS NULL")
LIVE = {"sqlite_where": _LIVE, "postgresql_where": _LIVE}
_NAMED = sa.text("invited_name IS NOT NULL")
NAMED = {"sqlite_where": _NAMED, "postgresql_where": _NAMED}


class Membership(Timestamped, Base):
    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "user_id"),
        sa.Index("ix_memberships_account_live", "account_id", "deleted_at"),
        # The Users list pages through one account's live users in these orders (covering).
        sa.Index("ix_memberships_live_name", "account_id", "sort_name", "id", **LIVE),
        sa.Index("ix_memberships_live_email", "account_id", "sort_email", "id", **LIVE),
        # SQLite only: the list sorts never-seen people first (NULLS FIRST), SQLite's own
        # order; PostgreSQL's is search.PG_SEEN_INDEX (this one, NULLS LAST, served nothing
        # there and cost every sign-in and import an entry).
        sa.Index("ix_memberships_live_seen", "account_id", "sort_last_seen", "id",
                 **LIVE).ddl_if(dialect="sqlite"),
        # Covering the invitation times too: ?invitation=expired walks it in name order and
        # reads the expiry from the index alone (services/invitation_states.py). SQLite only:
        # PostgreSQL's leaves the times out, so Resend Invite's mass update of them stays a
        # HOT update (search.PG_STATE_INDEX).
        sa.Index("ix_memberships_live_state", "account_id", "invite_state", "sort_name", "id",
                 "invite_expires_at", "invite_sent_at", **LIVE).ddl_if(dialect="sqlite"),
        # The purge finds what is past retention through deleted_at, and a person's erasure
        # clears deleted_by_id through its index. Both are NULL when a membership is written
        # (an import adds 100,000): on PostgreSQL the indexes hold the deleted ones only, so
        # those inserts skip them (migration 0025). SQLite keeps them whole.
        sa.Index("ix_memberships_deleted_at", "deleted_at",
                 postgresql_where=sa.text("deleted_at IS NOT NULL")),
        sa.Index("ix_memberships_deleted_by_id", "deleted_by_id",
                 postgresql_where=sa.text("deleted_by_id IS NOT NULL")),
        # The few memberships with a name of their own (someone known elsewhere, invited
        # here): a search tests them by their sort keys (services/users.py, _search_hits)
        # without reading the whole account. Resend Invite changes no column of it (HOT).
        sa.Index("ix_memberships_invited_name", "account_id", **NAMED),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: so.Mapped[str] = so.mapped_column(sa.String(16), default=Role.MEMBER.value)
    invite_state: so.Mapped[str] = so.mapped_column(sa.String(16), default=InviteState.INVITED.value)
    # The mail server's reply when it refused the invitation.
    invite_error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # When the newest invitation link stops working (the account's validity when it was
    # issued), and when its e-mail was delivered or its link copied (None: still queued).
    invite_expires_at: so.Mapped[datetime | None]
    invite_sent_at: so.Mapped[datetime | None]
    # Indexed, like every foreign key a purge deletes through: SQLite scans an unindexed
    # child column once per deleted parent row to apply ON DELETE.
    invited_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # The user import that added them (UserImport.id; Undo import deletes the membership).
    import_id: so.Mapped[int | None]
    # Soft-delete stamp (indexed above: ix_memberships_deleted_at).
    deleted_at: so.Mapped[datetime | None]
    deleted_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    # What the admin typed when adding someone who is already a person elsewhere: until they
    # accept the invitation this account sees only this name and phone, never the person's
    # own (DESIGN §1); the membership awaits their consent while it is set (``awaiting``),
    # and accepting clears it, so the person's own name shows from then on.
    invited_name: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    invited_phone: so.Mapped[str | None] = so.mapped_column(sa.String(32))

    # Copies of the person's lower-cased name, e-mail and last-seen time, kept by database
    # triggers (portal/models/search.py) so one account's list pages through its own index.
    sort_name: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    sort_email: so.Mapped[str | None] = so.mapped_column(sa.String(254))
    # The person's last activity in this account (never another's): shown and sorted as
    # "Last seen"; written by the sign-in service (portal/services/auth.py).
    sort_last_seen: so.Mapped[datetime | None]

    account: so.Mapped[Account] = so.relationship(lazy="joined", innerjoin=True)
    user: so.Mapped[User] = so.relationship(foreign_keys=[user_id], lazy="joined", innerjoin=True)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def awaiting(self) -> bool:
        """A person known elsewhere who has not yet accepted this account's invitation."""
        return self.invited_name is not None

    @property
    def invitation(self) -> Invitation | None:
        """Where this membership's invitation stands now."""
        return invitation_of(self.invite_state, self.invite_expires_at, self.invite_sent_at,
                             utcnow())

    @property
    def shown_name(self) -> str:
        """The name this account sees: the one it typed until the person accepts."""
        return self.invited_name if self.invited_name is not None else self.user.name

    @property
    def shown_phone(self) -> str | None:
        """The phone this account sees: the one it typed until the person accepts."""
        return self.invited_phone if self.awaiting else self.user.phone

    def __repr__(self) -> str:
        return f"<Membership {self.id} user={self.user_id} account={self.account_id}>"
