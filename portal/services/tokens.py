"""Invitation and reset links: 256-bit random tokens, stored as SHA-256, single use."""
import base64
import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa

from portal.extensions import db
from portal.models import ActionToken
from portal.models import User
from portal.models import utcnow
from portal.services.errors import ServiceError
from portal.services.passwords import password_stamp


class LinkInvalid(ServiceError):
    """A used, superseded or expired link: the page offers a way to get a new one."""

    status = 410


def digest(raw: str) -> str:
    """Return the stored form of a token."""
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(user: User, purpose: str, ttl: timedelta, account_id: int | None = None) -> str:
    """Create a token and supersede the person's earlier ones of the same purpose."""
    now = utcnow()
    supersede([user.id], purpose, account_id)
    raw = secrets.token_urlsafe(32)
    db.session.add(
        ActionToken(
            user_id=user.id,
            account_id=account_id,
            purpose=purpose,
            token_hash=digest(raw),
            password_stamp=password_stamp(user),
            expires_at=now + ttl,
        )
    )
    return raw


def supersede(user_ids, purpose: str, account_id: int | None = None) -> None:
    """Mark the unused links of these people (ids or a SELECT of ids) used, set-wise."""
    stmt = sa.update(ActionToken).where(
        ActionToken.user_id.in_(user_ids),
        ActionToken.purpose == purpose,
        ActionToken.used_at.is_(None),
    )
    if account_id is not None:
        stmt = stmt.where(ActionToken.account_id == account_id)
    db.session.execute(
        stmt.values(used_at=utcnow()), execution_options={"synchronize_session": False}
    )


def rekey(stored: str) -> str | None:
    """Give the live token stored as ``stored`` a fresh random value; return it, or None.

    How a sealed link gets its secret only when its e-mail is delivered (services/mail): the
    token row (person, purpose, expiry, password stamp) was written when the link was asked
    for, under the digest of a value nobody kept. No commit.
    """
    raw = secrets.token_urlsafe(32)
    result = db.session.execute(
        sa.update(ActionToken)
        .where(
            ActionToken.token_hash == stored,
            ActionToken.used_at.is_(None),
            ActionToken.expires_at > utcnow(),
        )
        .values(token_hash=digest(raw)),
        execution_options={"synchronize_session": False},
    )
    return raw if result.rowcount == 1 else None


def new_pairs(count: int) -> list[tuple[str, str]]:
    """Return ``count`` fresh (raw token, stored digest) pairs for issuing links set-wise.

    264 random bits each: 33 bytes are 44 base64 characters without padding, so one call to
    the CSPRNG and one encoding serve them all.
    """
    text = base64.urlsafe_b64encode(secrets.token_bytes(33 * count)).decode()
    raws = [text[i:i + 44] for i in range(0, 44 * count, 44)]
    return [(raw, digest(raw)) for raw in raws]


def find(raw: str, purpose: str) -> ActionToken:
    """Return the live token for this link or raise LinkInvalid with the reason."""
    token = None
    if raw and len(raw) <= 100:
        token = db.session.scalar(
            sa.select(ActionToken).where(
                ActionToken.token_hash == digest(raw), ActionToken.purpose == purpose
            )
        )
    if token is None:
        raise LinkInvalid("This link is not valid. Ask for a new one.")
    if token.used_at is not None:
        raise LinkInvalid("This link has already been used or a newer one was sent.")
    if token.expires_at <= utcnow():
        raise LinkInvalid("This link has expired. Ask for a new one.")
    user = db.session.get(User, token.user_id)
    if user is None or token.password_stamp != password_stamp(user):
        raise LinkInvalid("This link no longer works because the password changed since it was sent.")
    return token


def spend(token: ActionToken) -> None:
    """Mark a token used (in the transaction that acts on it)."""
    token.used_at = utcnow()
