"""Second factors of a person: authenticator apps (TOTP), passkeys, recovery codes, and the
pending second step of a sign-in."""
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import Timestamped

FACTOR_KINDS = ("totp", "passkey")
# Who of an account must use a second factor (Settings › Security).
SECOND_FACTOR_RULES = ("off", "admins", "everyone")


class _PersonsOwn(Timestamped):
    """A row of one person's sign-in credentials: it goes when the person goes."""

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )


class SecondFactor(_PersonsOwn, Base):
    """One authenticator app or passkey; it counts only once confirmed."""

    __tablename__ = "second_factors"

    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    # An authenticator app counts from its first correct code; a passkey from its registration.
    confirmed_at: so.Mapped[datetime | None]
    last_used_at: so.Mapped[datetime | None]
    # TOTP: the base32 shared secret, and the last time step accepted (a code is used once).
    totp_secret: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    totp_last_step: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    # Passkey: the credential id (base64url), its COSE public key and signature counter.
    credential_id: so.Mapped[str | None] = so.mapped_column(sa.String(1400), unique=True)
    public_key: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary)
    sign_count: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)


class RecoveryCode(_PersonsOwn, Base):
    """One single-use recovery code, stored as an argon2id hash only."""

    __tablename__ = "recovery_codes"

    code_hash: so.Mapped[str] = so.mapped_column(sa.String(255))
    used_at: so.Mapped[datetime | None]


class SignInChallenge(_PersonsOwn, Base):
    """A sign-in whose password was right, waiting for its second factor (short-lived)."""

    __tablename__ = "sign_in_challenges"

    # SHA-256 of the random challenge id given to the browser (cookie) or the app.
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    # What the first step said about the device (services.auth.Client), to create it after.
    client: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)
    # The WebAuthn challenge of a passkey assertion (base64url), when one was asked for.
    webauthn_challenge: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    expires_at: so.Mapped[datetime]
    used_at: so.Mapped[datetime | None]
