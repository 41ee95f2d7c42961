"""The second step of a sign-in: a code, a recovery code or a passkey, then the device session.

The device row is created only here, after the second factor; a wrong code counts toward the
same per-person throttle as a wrong password (services.auth).
"""
from typing import Any

import sqlalchemy as sa

from portal.extensions import db
from portal.models import User
from portal.models import utcnow
from portal.services import accounts
from portal.services import auth
from portal.services import second_factors
from portal.services.errors import ServiceError


def _refuse(user_id: int, method: str) -> None:
    auth.count_failure(user_id, utcnow())  # the sign-in throttle (commits, "login.failed")
    user = db.session.get(User, user_id)
    second_factors.record(user, "second_factor.failed", method=method)
    db.session.commit()
    raise ServiceError(second_factors.WRONG_CODE, "code")


def complete(raw: str | None, *, code: str | None = None, passkey: Any = None) -> auth.SignedIn:
    """Finish a sign-in with a code or a passkey assertion; return the new device session."""
    challenge = second_factors.live_challenge(raw)
    user = db.session.get(User, challenge.user_id)
    now = utcnow()
    if user.throttled_until is not None and user.throttled_until > now:
        db.session.rollback()
        raise ServiceError(second_factors.WRONG_CODE, "code")
    if passkey is not None:
        outcome = second_factors.check_passkey(challenge, passkey)
        method = "passkey"
    else:
        outcome = second_factors.check_code(challenge, code)
        method = "code"
    if outcome is None:
        db.session.rollback()
        _refuse(challenge.user_id, method)
    if not second_factors.spend_challenge(challenge):
        db.session.rollback()
        raise second_factors.ChallengeInvalid("This sign-in was already completed.")
    action, details = outcome
    second_factors.record(user, action, **details)
    if user.failed_logins or user.throttled_until is not None:
        db.session.execute(
            sa.update(User).where(User.id == user.id)
            .values(failed_logins=0, failed_login_at=None, throttled_until=None),
            execution_options={"synchronize_session": False},
        )
    client = auth.Client(**challenge.client)
    memberships = accounts.live_memberships(user)
    if not memberships:
        db.session.rollback()
        raise second_factors.ChallengeInvalid("This sign-in expired. Sign in again.")
    only = memberships[0].account_id if len(memberships) == 1 else None
    device, token = auth.sign_in(user, client, account_id=only)  # commits everything above
    return auth.SignedIn(device=device, token=token, user=user, memberships=memberships)
