"""Where invitations stand: queued, sent, refused, accepted or expired (issue 15, item 1).

A membership stores its state (invited / invite failed / active), when its newest link stops
working (``invite_expires_at``, the account's validity when the link was issued) and when the
e-mail was delivered or the link copied (``invite_sent_at``). Everything else is read from
those: the list's ``?invitation=`` filter, the counts at the top of Users, and Resend Invite to
every expired or refused invitation. Each condition starts with an equality on the state, so
the Users list walks ``ix_memberships_live_state`` in name order and reads the times from the
index alone (on SQLite; PostgreSQL's ``ix_memberships_pg_live_state`` leaves the times out, so
Resend Invite's mass update of them is a HOT update, and reads them from the rows).
"""
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Invitation
from portal.models import InviteState
from portal.models import Membership
from portal.models import utcnow
from portal.services import scope

# Every expired or refused invitation: what the header's Resend Invite sends to.
LAPSED = "lapsed"
CHOICES = tuple(Invitation) + (LAPSED,)
LABELS = {
    Invitation.QUEUED: "Queued",
    Invitation.SENT: "Sent",
    Invitation.REFUSED: "Refused",
    Invitation.ACCEPTED: "Accepted",
    Invitation.EXPIRED: "Expired",
}


def condition(invitation: str, now: datetime | None = None) -> sa.ColumnElement[bool]:
    """Return the WHERE clause of memberships whose invitation stands at ``invitation``."""
    now = now or utcnow()
    waiting = Membership.invite_state == InviteState.INVITED
    expired = sa.and_(waiting, Membership.invite_expires_at <= now)
    refused = Membership.invite_state == InviteState.INVITE_FAILED
    return {
        Invitation.QUEUED: sa.and_(waiting, Membership.invite_expires_at > now,
                                   Membership.invite_sent_at.is_(None)),
        Invitation.SENT: sa.and_(waiting, Membership.invite_expires_at > now,
                                 Membership.invite_sent_at.is_not(None)),
        Invitation.REFUSED: refused,
        Invitation.ACCEPTED: Membership.invite_state == InviteState.ACTIVE,
        Invitation.EXPIRED: expired,
        LAPSED: sa.or_(expired, refused),
    }[invitation]


# The top of Users counts up to this many of each (a bounded index walk on every page view);
# beyond it says "1,000+", and the filtered list gives the exact number.
SUMMARY_CAP = 1_000


@dataclass(frozen=True)
class Summary:
    """What the top of Users says: how many invitations expired and how many were refused."""

    expired: int
    refused: int
    # Counted up to SUMMARY_CAP only (a count that reached it reads "1,000+").
    cap: int | None = None

    @property
    def lapsed(self) -> int:
        return self.expired + self.refused

    def figure(self, count: int) -> str:
        return f"{count:,}+" if self.cap is not None and count >= self.cap else f"{count:,}"

    @property
    def expired_text(self) -> str:
        return f"{self.figure(self.expired)} invitation{'' if self.expired == 1 else 's'} expired"

    @property
    def refused_text(self) -> str:
        noun = "" if self.expired else f" invitation{'' if self.refused == 1 else 's'}"
        return f"{self.figure(self.refused)}{noun} refused"

    def __str__(self) -> str:
        parts = ([self.expired_text] if self.expired else []) + (
            [self.refused_text] if self.refused else [])
        return ", ".join(parts)


def summary(actor, *, exact: bool = False) -> Summary:
    """Count the account's live users whose invitation expired or was refused.

    Two index walks, each stopped at SUMMARY_CAP unless ``exact`` (the confirmation of Resend
    Invite says exactly how many), so a page view costs the same at 100,000 invitations.
    """
    now = utcnow()
    live = scope.in_account(sa.select(Membership.id), Membership, actor).where(
        Membership.deleted_at.is_(None))

    def count(condition_) -> int:
        stmt = live.where(condition_)
        if not exact:
            stmt = stmt.limit(SUMMARY_CAP)
        return db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))

    return Summary(expired=count(condition(Invitation.EXPIRED, now)),
                   refused=count(condition(Invitation.REFUSED, now)),
                   cap=None if exact else SUMMARY_CAP)
