"""Second factors: authenticator apps (TOTP), passkeys (WebAuthn), recovery codes, the rule
that makes them required, and the pending second step of a sign-in.

A factor belongs to the person (the identity), not to one account, so its events are recorded
once per live account of the person: each account's audit trail and activity e-mail show them.
"""
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pyotp
import segno
import sqlalchemy as sa
import webauthn
from flask import current_app
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import AuthenticatorSelectionCriteria
from webauthn.helpers.structs import PublicKeyCredentialDescriptor
from webauthn.helpers.structs import ResidentKeyRequirement
from webauthn.helpers.structs import UserVerificationRequirement

from portal.extensions import db
from portal.models import Account
from portal.models import Membership
from portal.models import RecoveryCode
from portal.models import Role
from portal.models import SecondFactor
from portal.models import SignInChallenge
from portal.models import User
from portal.models import utcnow
from portal.services import audit
from portal.services import mail
from portal.services import passwords
from portal.services import tokens
from portal.services.errors import NotFound
from portal.services.errors import ServiceError
from portal.services.scope import parse_id

ISSUER = "Participants Portal"
CHALLENGE_MINUTES = 5
RECOVERY_CODE_COUNT = 10
# 10 characters from 31 unambiguous ones (~50 bits), shown as xxxxx-xxxxx.
_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
TOTP_WINDOW = 1  # one 30-second step either side of now (clock drift)
NAME_MAX = 120
KIND_LABELS = {"totp": "Authenticator app", "passkey": "Passkey"}
SETUP_REQUIRED = (
    "Your organisation requires a second factor. Sign in to the portal in a browser and add one "
    "under Your account › Sign-in security, then sign in here again."
)
WRONG_CODE = (
    "That code is not right (or there were too many attempts: wait a few minutes and try again)."
)


class ChallengeInvalid(ServiceError):
    """The second step is unknown, used or expired: start again with the password."""

    status = 401


class SecondFactorRequired(ServiceError):
    """The password was right; the sign-in waits for a second factor (``challenge``)."""

    status = 401

    def __init__(self, challenge: str):
        super().__init__("Enter a code from your authenticator app, a recovery code, or use a "
                         "passkey to finish signing in.")
        self.challenge = challenge


class SecondFactorSetupRequired(ServiceError):
    """An account of the person requires a second factor and they have none yet."""

    status = 403


# --- who has and who needs a factor ---------------------------------------------------------


def _confirmed(user_id: int):
    return sa.and_(SecondFactor.user_id == user_id, SecondFactor.confirmed_at.is_not(None))


def has_factor(user_id: int) -> bool:
    """Tell whether the person has a confirmed authenticator app or passkey."""
    return bool(db.session.scalar(sa.select(sa.exists().where(_confirmed(user_id)))))


def requiring_accounts(user_id: int) -> list[str]:
    """Return the names of the person's live accounts whose rule asks them for a second factor."""
    return list(
        db.session.scalars(
            sa.select(Account.name)
            .join(Membership, Membership.account_id == Account.id)
            .where(
                Membership.user_id == user_id,
                Membership.deleted_at.is_(None),
                sa.or_(
                    Account.second_factor_rule == "everyone",
                    sa.and_(Account.second_factor_rule == "admins", Membership.role == Role.ADMIN),
                ),
            )
            .order_by(Account.name)
        )
    )


def setup_required(user_id: int) -> bool:
    """Tell whether the strictest rule among the person's accounts wants a factor they lack."""
    return bool(requiring_accounts(user_id)) and not has_factor(user_id)


def record(user: User, action: str, *, actor=None, **details: Any) -> None:
    """Add the event to the trail of each account that shows it.

    The person's own doing (a factor added, used, failed, removed) goes to each account they
    have joined, as a failed sign-in does (audit.record_in_accounts): an account where they are
    only invited is shown nothing of their own. An admin's reset goes to each of their live
    accounts, all of which that admin administers (profiles.can_change_identity); the admin's
    own account is one of them, since a reset starts from a live membership there."""
    if actor is None:
        audit.record_in_accounts(action, subject=user, actor_user=user, **details)
        return
    live = db.session.scalars(
        sa.select(Membership.account_id).where(
            Membership.user_id == user.id, Membership.deleted_at.is_(None)
        )
    ).all()
    for account_id in live:
        audit.record(actor, action, subject=user, account_id=account_id, **details)


def notify(user: User, change: str) -> None:
    """Queue the "your second factors changed" e-mail (``change`` says what); no commit."""
    mail.enqueue(
        "second_factor_changed",
        user.email,
        mail.subject("second_factor_changed"),
        user_id=user.id,
        name=user.name,
        change=change,
        url=mail.link("/account/security"),
    )


# --- the person's own page ------------------------------------------------------------------


@dataclass(frozen=True)
class FactorView:
    id: int
    kind: str
    kind_label: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class SecurityOverview:
    """What /account/security shows."""

    factors: list[FactorView]
    recovery_left: int
    required_by: list[str]
    has_passkey: bool = False

    @property
    def has_factor(self) -> bool:
        return bool(self.factors)

    @property
    def must_enrol(self) -> bool:
        return bool(self.required_by) and not self.factors


def _factor_view(factor: SecondFactor) -> FactorView:
    return FactorView(factor.id, factor.kind, KIND_LABELS[factor.kind], factor.name,
                      factor.created_at, factor.last_used_at)


def overview(user: User) -> SecurityOverview:
    """Return the person's confirmed factors, recovery codes left and who requires a factor."""
    factors = [
        _factor_view(f)
        for f in db.session.scalars(
            sa.select(SecondFactor).where(_confirmed(user.id)).order_by(SecondFactor.id)
        )
    ]
    left = db.session.scalar(
        sa.select(sa.func.count(RecoveryCode.id)).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
        )
    )
    return SecurityOverview(factors, left or 0, requiring_accounts(user.id),
                            any(f.kind == "passkey" for f in factors))


def _factor(factor_id, *conditions) -> SecondFactor:
    """Return the factor with this id that meets ``conditions`` (the owner's), or NotFound."""
    factor = db.session.scalar(
        sa.select(SecondFactor).where(SecondFactor.id == parse_id(factor_id), *conditions)
    )
    if factor is None:
        raise NotFound()
    return factor


def own_factor(user: User, factor_id) -> SecondFactor:
    """Return one of the person's confirmed factors, or raise NotFound."""
    return _factor(factor_id, _confirmed(user.id))


def _clean_name(name: str | None, default: str) -> str:
    name = " ".join((name or "").split())[:NAME_MAX]
    return name or default


# --- authenticator apps (TOTP) --------------------------------------------------------------


@dataclass(frozen=True)
class TotpEnrolment:
    """An authenticator app being added: its secret as text, URI and QR code (PNG data URI)."""

    factor_id: int
    secret: str
    uri: str
    qr_png: str


def _enrolment(factor: SecondFactor, user: User) -> TotpEnrolment:
    uri = pyotp.TOTP(factor.totp_secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    qr = segno.make(uri, error="m").png_data_uri(scale=5, border=4)
    return TotpEnrolment(factor.id, factor.totp_secret, uri, qr)


def start_totp(user: User) -> TotpEnrolment:
    """Create an unconfirmed authenticator app (an earlier unconfirmed one is dropped)."""
    db.session.execute(
        sa.delete(SecondFactor).where(
            SecondFactor.user_id == user.id,
            SecondFactor.kind == "totp",
            SecondFactor.confirmed_at.is_(None),
        )
    )
    factor = SecondFactor(user_id=user.id, kind="totp", name=KIND_LABELS["totp"],
                          totp_secret=pyotp.random_base32())
    db.session.add(factor)
    db.session.commit()
    return _enrolment(factor, user)


def pending_totp(user: User, factor_id) -> TotpEnrolment:
    """Return the person's unconfirmed authenticator app (to show its QR code again)."""
    factor = _factor(factor_id, SecondFactor.user_id == user.id, SecondFactor.kind == "totp",
                     SecondFactor.confirmed_at.is_(None))
    return _enrolment(factor, user)


def _normalise_code(code: str | None) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())[:64]


def _totp_step(factor: SecondFactor, code: str) -> int | None:
    """Return the time step a six-digit code is valid for (now ± the window), if any."""
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(factor.totp_secret)
    now = int(time.time()) // totp.interval
    for step in range(now - TOTP_WINDOW, now + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _spend_step(factor: SecondFactor, step: int) -> bool:
    """Accept a step only if it is later than the last accepted one (in SQL: replay-safe)."""
    result = db.session.execute(
        sa.update(SecondFactor)
        .where(
            SecondFactor.id == factor.id,
            sa.or_(SecondFactor.totp_last_step.is_(None), SecondFactor.totp_last_step < step),
        )
        .values(totp_last_step=step, last_used_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1


def confirm_totp(user: User, factor_id, code: str, name: str | None) -> FactorView:
    """Confirm an authenticator app with its first code; from then on it counts."""
    enrolment = pending_totp(user, factor_id)
    factor = db.session.get(SecondFactor, enrolment.factor_id)
    step = _totp_step(factor, _normalise_code(code))
    if step is None or not _spend_step(factor, step):
        db.session.rollback()
        raise ServiceError("That code is not right. Enter the six digits the app shows now.",
                           "code")
    db.session.refresh(factor)
    factor.confirmed_at = utcnow()
    factor.name = _clean_name(name, KIND_LABELS["totp"])
    record(user, "second_factor.added", kind="totp", name=factor.name)
    notify(user, f"The authenticator app {factor.name} was added.")
    db.session.commit()
    return _factor_view(factor)


# --- passkeys (WebAuthn) --------------------------------------------------------------------


def relying_party() -> tuple[str, str]:
    """Return (RP ID, origin) from BASE_URL: passkeys are bound to the portal's own address."""
    parts = urlsplit(current_app.config["BASE_URL"])
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


def _user_handle(user: User) -> bytes:
    """A stable, opaque WebAuthn user handle (no e-mail or id in clear)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"webauthn-user:{user.id}".encode(), hashlib.sha256).digest()


def _passkeys(user_id: int) -> list[SecondFactor]:
    return list(
        db.session.scalars(
            sa.select(SecondFactor).where(_confirmed(user_id), SecondFactor.kind == "passkey")
        )
    )


def _descriptors(user_id: int) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(id=webauthn.base64url_to_bytes(f.credential_id))
        for f in _passkeys(user_id)
    ]


def passkey_registration_options(user: User) -> tuple[str, str]:
    """Return the creation options (JSON for the browser) and the challenge to keep."""
    rp_id, _origin = relying_party()
    options = webauthn.generate_registration_options(
        rp_id=rp_id,
        rp_name=ISSUER,
        user_id=_user_handle(user),
        user_name=user.email,
        user_display_name=user.name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(user.id),
    )
    return webauthn.options_to_json(options), bytes_to_base64url(options.challenge)


def register_passkey(user: User, credential: Any, challenge: str | None,
                     name: str | None) -> FactorView:
    """Verify a new passkey's attestation against the challenge given out, and keep it."""
    if not challenge or not isinstance(credential, dict):
        raise ServiceError("The passkey could not be added; try again.")
    rp_id, origin = relying_party()
    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=webauthn.base64url_to_bytes(challenge),
            expected_rp_id=rp_id,
            expected_origin=origin,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        raise ServiceError("The passkey could not be verified; try again.") from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if db.session.scalar(sa.select(SecondFactor.id).where(
            SecondFactor.credential_id == credential_id)):
        raise ServiceError("This passkey is already registered.")
    now = utcnow()
    factor = SecondFactor(
        user_id=user.id, kind="passkey", name=_clean_name(name, KIND_LABELS["passkey"]),
        credential_id=credential_id, public_key=verified.credential_public_key,
        sign_count=verified.sign_count, confirmed_at=now,
    )
    db.session.add(factor)
    db.session.flush()
    record(user, "second_factor.added", kind="passkey", name=factor.name)
    notify(user, f"The passkey {factor.name} was added.")
    db.session.commit()
    return _factor_view(factor)


# --- recovery codes -------------------------------------------------------------------------


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def new_recovery_codes(user: User) -> list[str]:
    """Replace the person's recovery codes with ten new ones; returned once, stored hashed."""
    if not has_factor(user.id):
        raise ServiceError("Add an authenticator app or a passkey first.")
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_code() for _ in range(RECOVERY_CODE_COUNT)]
    hasher = passwords.hasher()
    db.session.add_all(
        RecoveryCode(user_id=user.id, code_hash=hasher.hash(_normalise_code(c))) for c in codes
    )
    record(user, "recovery_codes.created", count=len(codes))
    db.session.commit()
    return codes


def _spend_recovery_code(user_id: int, code: str) -> int | None:
    """Mark the matching unused recovery code used; return how many are left (None: no match)."""
    if len(code) != 10:
        return None
    hasher = passwords.hasher()
    unused = db.session.execute(
        sa.select(RecoveryCode.id, RecoveryCode.code_hash).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    # End the read before hashing (argon2 per code): on SQLite an open transaction holds the
    # write lock every other request waits for. Nothing is pending here; objects reload.
    db.session.rollback()
    for code_id, code_hash in unused:
        try:
            hasher.verify(code_hash, code)
        except Exception:  # argon2's VerifyMismatchError and friends: not this one
            continue
        spent = db.session.execute(
            sa.update(RecoveryCode)
            .where(RecoveryCode.id == code_id, RecoveryCode.used_at.is_(None))
            .values(used_at=utcnow()),
            execution_options={"synchronize_session": False},
        )
        if spent.rowcount != 1:
            return None  # a parallel request spent it first
        return len(unused) - 1
    return None


# --- removal --------------------------------------------------------------------------------


def _drop_recovery_codes_if_no_factor(user_id: int) -> None:
    if not has_factor(user_id):
        db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


def remove_factor(user: User, factor_id, password: str) -> FactorView:
    """Remove one of the person's factors once their password is entered again.

    A wrong password counts as a failed sign-in (the sign-in throttle), so a taken-over session
    cannot guess it. Removing the last factor also removes the recovery codes.
    """
    from portal.services import auth  # auth imports this module (the sign-in asks for factors)

    factor = own_factor(user, factor_id)
    gone = _factor_view(factor)
    stored = user.password_hash
    db.session.rollback()  # no open transaction while argon2 runs (SQLite's write lock)
    ok, _rehashed = passwords.verify_hash(stored, password or "")
    if not ok:
        auth.count_failure(user.id, utcnow())
        raise ServiceError("The password is not right.", "password")
    factor = own_factor(user, factor_id)
    db.session.delete(factor)
    db.session.flush()
    _drop_recovery_codes_if_no_factor(user.id)
    record(user, "second_factor.removed", kind=gone.kind, name=gone.name)
    notify(user, f"The {gone.kind_label.lower()} {gone.name} was removed.")
    db.session.commit()
    return gone


# --- the second step of a sign-in -----------------------------------------------------------


def start_challenge(user: User, client: dict[str, Any]) -> str:
    """Open a short-lived second step for a sign-in whose password was right; return its id."""
    now = utcnow()
    db.session.execute(
        sa.delete(SignInChallenge).where(
            SignInChallenge.user_id == user.id, SignInChallenge.expires_at < now
        )
    )
    raw = secrets.token_urlsafe(32)
    db.session.add(SignInChallenge(
        user_id=user.id, token_hash=tokens.digest(raw), client=client,
        expires_at=now + timedelta(minutes=CHALLENGE_MINUTES),
    ))
    db.session.commit()
    return raw


def live_challenge(raw: str | None) -> SignInChallenge:
    """Return the open second step for this id, or raise ChallengeInvalid."""
    if not isinstance(raw, str) or not raw or len(raw) > 100:
        raise ChallengeInvalid("This sign-in expired. Sign in again with your password.")
    challenge = db.session.scalar(
        sa.select(SignInChallenge).where(
            SignInChallenge.token_hash == tokens.digest(raw),
            SignInChallenge.used_at.is_(None),
            SignInChallenge.expires_at > utcnow(),
        )
    )
    if challenge is None:
        raise ChallengeInvalid("This sign-in expired. Sign in again with your password.")
    return challenge


@dataclass(frozen=True)
class StepInfo:
    """What the second-step page offers."""

    has_totp: bool
    has_passkey: bool
    has_recovery: bool


def step_info(raw: str | None) -> StepInfo:
    """Return which kinds of factor the person signing in can use (ChallengeInvalid if none)."""
    challenge = live_challenge(raw)
    kinds = set(db.session.scalars(
        sa.select(SecondFactor.kind).where(_confirmed(challenge.user_id))
    ))
    recovery = db.session.scalar(sa.select(sa.exists().where(
        RecoveryCode.user_id == challenge.user_id, RecoveryCode.used_at.is_(None))))
    return StepInfo("totp" in kinds, "passkey" in kinds, bool(recovery))


def passkey_sign_in_options(raw: str | None) -> str:
    """Return assertion options for the person's passkeys (the challenge kept on the step)."""
    challenge = live_challenge(raw)
    rp_id, _origin = relying_party()
    options = webauthn.generate_authentication_options(
        rp_id=rp_id,
        allow_credentials=_descriptors(challenge.user_id),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    challenge.webauthn_challenge = bytes_to_base64url(options.challenge)
    db.session.commit()
    return webauthn.options_to_json(options)


def check_code(challenge: SignInChallenge, code: str | None) -> tuple[str, dict] | None:
    """Check an authenticator-app or recovery code; return (event, details) or None.

    Does not commit: the caller commits with the sign-in (or the failure).
    """
    code = _normalise_code(code)
    user_id = challenge.user_id
    if len(code) == 6 and code.isdigit():
        for factor in db.session.scalars(
            sa.select(SecondFactor).where(_confirmed(user_id), SecondFactor.kind == "totp")
        ):
            step = _totp_step(factor, code)
            if step is not None and _spend_step(factor, step):
                return "second_factor.used", {"kind": "totp", "name": factor.name}
        return None
    left = _spend_recovery_code(user_id, code)
    if left is None:
        return None
    return "recovery_code.used", {"left": left}


def check_passkey(challenge: SignInChallenge, credential: Any) -> tuple[str, dict] | None:
    """Verify a passkey assertion against the step's WebAuthn challenge; (event, details)."""
    if not challenge.webauthn_challenge or not isinstance(credential, dict):
        return None
    factor = db.session.scalar(
        sa.select(SecondFactor).where(
            _confirmed(challenge.user_id),
            SecondFactor.kind == "passkey",
            SecondFactor.credential_id == str(credential.get("id", ""))[:1400],
        )
    )
    if factor is None:
        return None
    rp_id, origin = relying_party()
    try:
        verified = webauthn.verify_authentication_response(
            credential=json.dumps(credential),
            expected_challenge=webauthn.base64url_to_bytes(challenge.webauthn_challenge),
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=factor.public_key,
            credential_current_sign_count=factor.sign_count,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        return None
    # A WebAuthn challenge answers once.
    challenge.webauthn_challenge = None
    factor.sign_count = verified.new_sign_count
    factor.last_used_at = utcnow()
    return "second_factor.used", {"kind": "passkey", "name": factor.name}


def spend_challenge(challenge: SignInChallenge) -> bool:
    """Mark the step used (once: a parallel completion loses); does not commit."""
    result = db.session.execute(
        sa.update(SignInChallenge)
        .where(SignInChallenge.id == challenge.id, SignInChallenge.used_at.is_(None))
        .values(used_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1


# --- admins helping people ------------------------------------------------------------------


def reset_all(user: User) -> int:
    """Remove every factor, recovery code and open second step of the person; no commit."""
    removed = db.session.execute(
        sa.delete(SecondFactor).where(_confirmed(user.id)),
        execution_options={"synchronize_session": False},
    ).rowcount or 0
    for model in (SecondFactor, RecoveryCode, SignInChallenge):
        db.session.execute(sa.delete(model).where(model.user_id == user.id),
                           execution_options={"synchronize_session": False})
    return removed
