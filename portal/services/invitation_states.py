"""Where invitations stand: queued, sent, refused, accepted or expired (issue 15, item 1).

A membership stores its state (invited / invite failed / active), when its newest link stops
working (``invite_expires_at``, the account's validity when the link was issued) and when the
e-mail was delivered or the link copied (``invite_sent_at``). Everything else is read from
those: the list's ``?invitation=`` filter, the counts at the top of Users, and Resend Invite to
every expired or refused invitation. Each condition starts with an equality on the state, so
the Users list walks ``ix_memberships_live_state`` in name order and reads the times from the
index alone.
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


@dataclass(frozen=True)
class Summary:
    """What the top of Users says: how many invitations expired and how many were refused."""

    expired: int
    refused: int

    @property
    def lapsed(self) -> int:
        return self.expired + self.refused

    def __str__(self) -> str:
        parts = []
        if self.expired:
            parts.append(f"{self.expired:,} invitation{'' if self.expired == 1 else 's'} expired")
        if self.refused:
            noun = "" if self.expired else f" invitation{'' if self.refused == 1 else 's'}"
            parts.append(f"{self.refused:,}{noun} refused")
        return ", ".join(parts)


def summary(actor) -> Summary:
    """Count the account's live users whose invitation expired or was refused (two index counts)."""
    now = utcnow()
    live = scope.in_account(sa.select(sa.func.count(Membership.id)), Membership, actor).where(
        Membership.deleted_at.is_(None))
    return Summary(
        expired=db.session.scalar(live.where(condition(Invitation.EXPIRED, now))),
        refused=db.session.scalar(live.where(condition(Invitation.REFUSED, now))),
    )
