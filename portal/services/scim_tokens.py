"""SCIM bearer tokens: created and revoked per account, shown once, stored hashed.

An identity provider authenticates with one of its account's tokens and then acts as a
``ScimActor``: an admin of that account alone, with no person behind it, named in the audit
trail by the token's name.
"""
import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

import sqlalchemy as sa

from portal.extensions import db
from portal.models import ScimToken
from portal.models import utcnow
from portal.services import accounts
from portal.services import audit
from portal.services import scope
from portal.services.errors import NotFound
from portal.services.errors import ServiceError
from portal.services.tokens import digest

PREFIX = "scim_"
# "Last used" is written at most this often per token: a sync pass is thousands of requests.
LAST_USED_EVERY = timedelta(minutes=1)


@dataclass
class ScimActor(accounts.Operator):
    """The acting party of a SCIM request: its account's token, with no person behind it —
    what an ``Operator`` is to the CLI, named in the trail by the token's name, and allowed to
    change identity-level data only of people wholly inside its one account."""

    token_id: int = 0
    token_name: str = ""
    send_invitations: bool = False
    scoped: bool = True

    @property
    def audit_label(self) -> str:
        return f"SCIM token \u201c{self.token_name}\u201d"


@dataclass(frozen=True)
class TokenRow:
    """One token as Settings › Provisioning lists it (never the token itself)."""

    id: int
    name: str
    send_invitations: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def clean_token_name(name: str | None) -> str:
    """Return a trimmed token name (default "Identity provider") or raise ServiceError."""
    name = " ".join((name or "").split()) or "Identity provider"
    if len(name) > 120 or not name.isprintable():
        raise ServiceError("A token name of at most 120 printable characters is required.", "name")
    return name


def create_token(actor, name: str | None = None, *, send_invitations: bool = False
                 ) -> tuple[ScimToken, str]:
    """Create a token for the actor's account; return it with the raw token (shown once)."""
    name = clean_token_name(name)
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ScimToken(
        account_id=actor.account_id,
        name=name,
        token_hash=digest(raw),
        send_invitations=bool(send_invitations),
        created_by_id=actor.user_id,
    )
    db.session.add(token)
    db.session.flush()
    audit.record(actor, "scim_token.created", token_id=token.id, name=name,
                 send_invitations=token.send_invitations)
    db.session.commit()
    return token, raw


def list_tokens(actor) -> list[TokenRow]:
    """Return the account's tokens, live ones first, newest first."""
    rows = db.session.execute(
        scope.in_account(
            sa.select(ScimToken.id, ScimToken.name, ScimToken.send_invitations,
                      ScimToken.created_at, ScimToken.last_used_at, ScimToken.revoked_at),
            ScimToken, actor,
        ).order_by(ScimToken.revoked_at.is_not(None), ScimToken.created_at.desc(),
                   ScimToken.id.desc())
    )
    return [TokenRow(*row) for row in rows]


def revoke_token(actor, token_id) -> ScimToken:
    """Revoke one of the account's tokens: the next request with it gets 401."""
    token = scope.get_in_account(ScimToken, token_id, actor)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(actor, "scim_token.revoked", token_id=token.id, name=token.name)
        db.session.commit()
    return token


def revoke_by_name(actor, name: str) -> list[ScimToken]:
    """Revoke the account's live tokens with this name (the CLI names them)."""
    name = " ".join((name or "").split())
    ids = list(db.session.scalars(
        scope.in_account(sa.select(ScimToken.id), ScimToken, actor)
        .where(ScimToken.name == name, ScimToken.revoked_at.is_(None))
    ))
    if not ids:
        raise NotFound(f"No live SCIM token named {name!r} in this account.")
    return [revoke_token(actor, token_id) for token_id in ids]


# Built once: every SCIM request runs it.
_LIVE_TOKEN = (
    sa.select(ScimToken.id, ScimToken.name, ScimToken.send_invitations, ScimToken.last_used_at,
              ScimToken.account_id)
    .where(ScimToken.token_hash == sa.bindparam("digest"), ScimToken.revoked_at.is_(None))
)


def authenticate(raw: str | None) -> ScimActor | None:
    """Return the actor of a live token, or None for a missing, wrong or revoked one."""
    if not raw or len(raw) > 200 or not raw.startswith(PREFIX):
        return None
    found = db.session.execute(_LIVE_TOKEN, {"digest": digest(raw)}).first()
    if found is None:
        return None
    token_id, name, send_invitations, last_used_at, account_id = found
    now = utcnow()
    if last_used_at is None or now - last_used_at > LAST_USED_EVERY:
        db.session.execute(
            sa.update(ScimToken).where(ScimToken.id == token_id).values(last_used_at=now)
        )
        db.session.commit()
    return ScimActor(account_id, token_id=token_id, token_name=name,
                     send_invitations=send_invitations)
