"""Passwords: argon2id hashing, the effective (strictest) policy, and its checks."""
import hashlib
import re
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from flask import current_app
from zxcvbn import zxcvbn

from portal.extensions import db
from portal.models import Account
from portal.models import Membership
from portal.models import User
from portal.models import utcnow
from portal.services.errors import ServiceError

MAX_LENGTH = 256
FLOOR = 8
# zxcvbn refuses longer input (its matching grows faster than the length: ~2 s at 256), so a
# longer password is scored on its first SCORED characters; the whole password is hashed.
SCORED = 72


@dataclass(frozen=True)
class Policy:
    min_length: int = 12
    require_classes: bool = False

    def describe(self) -> str:
        text = f"At least {self.min_length} characters; not a common or easily guessed password"
        if self.require_classes:
            text += "; with an upper-case letter, a lower-case letter, a digit and a symbol"
        return text + "; not containing your name or e-mail."


def hasher() -> PasswordHasher:
    """Return the app's argon2id hasher, built from the ARGON2_* settings."""
    ext = current_app.extensions
    if "portal.hasher" not in ext:
        cfg = current_app.config
        ext["portal.hasher"] = PasswordHasher(
            time_cost=cfg["ARGON2_TIME_COST"],
            memory_cost=cfg["ARGON2_MEMORY_COST"],
            parallelism=cfg["ARGON2_PARALLELISM"],
        )
    return ext["portal.hasher"]


def _dummy_hash() -> str:
    ext = current_app.extensions
    if "portal.dummy_hash" not in ext:
        ext["portal.dummy_hash"] = hasher().hash("dummy password for timing")
    return ext["portal.dummy_hash"]


def verify_hash(stored: str | None, password: str) -> tuple[bool, str | None]:
    """Check a password against a stored hash; return (ok, a new hash when the settings rose).

    Unknown people are checked against a dummy hash, so every answer costs one argon2 run;
    over-long input is refused before any hashing (long-password denial of service).
    """
    if len(password) > MAX_LENGTH:
        return False, None
    try:
        hasher().verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False, None
    if stored is None:
        return False, None
    return True, hasher().hash(password) if hasher().check_needs_rehash(stored) else None


def verify(user: User | None, password: str) -> bool:
    """Check a person's password; rehash it when the settings rose (does not commit)."""
    ok, rehashed = verify_hash(user.password_hash if user is not None else None, password)
    if rehashed is not None:
        user.password_hash = rehashed
    return ok


def password_stamp(user: User) -> str:
    """Return a short digest of the password state; links issued before a change stop working."""
    return stamp_of(user.password_hash)


def stamp_of(password_hash: str | None) -> str:
    """Return the password stamp of a stored hash (None: no password yet)."""
    return hashlib.sha256((password_hash or "none").encode()).hexdigest()[:16]


def person_accounts(user: User | None, extra: list[Account] | None = None) -> list[Account]:
    """Return the person's live accounts plus ``extra`` (an account they are joining)."""
    found = list(extra or [])
    if user is not None and user.id is not None:
        found += db.session.scalars(
            sa.select(Account)
            .join(Membership, Membership.account_id == Account.id)
            .where(Membership.user_id == user.id, Membership.deleted_at.is_(None),
                   Membership.invited_name.is_(None))
        )
    return found


def policy_of(accounts: list[Account]) -> Policy:
    """Return the strictest policy among these accounts (the default when there are none)."""
    if not accounts:
        return Policy()
    return Policy(
        min_length=max(a.password_min_length for a in accounts),
        require_classes=any(a.password_require_classes for a in accounts),
    )


def effective_policy(user: User | None, accounts: list[Account] | None = None) -> Policy:
    """Return the strictest policy among the person's live accounts (and any extra ones)."""
    return policy_of(person_accounts(user, accounts))


def structural_problems(password: str, policy: Policy) -> list[str]:
    """Return the length and character-class reasons (the parts an account can tighten)."""
    if len(password) > MAX_LENGTH:
        return [f"Use at most {MAX_LENGTH} characters."]
    reasons = []
    if len(password) < max(policy.min_length, FLOOR):
        reasons.append(f"Use at least {policy.min_length} characters.")
    if policy.require_classes and not all(
        re.search(p, password) for p in (r"[A-Z]", r"[a-z]", r"[0-9]", r"[^A-Za-z0-9]")
    ):
        reasons.append("Include an upper-case letter, a lower-case letter, a digit and a symbol.")
    return reasons


def problems(password: str, policy: Policy, context: list[str]) -> list[str]:
    """Return every reason the password breaks the policy (empty when it is fine)."""
    reasons = structural_problems(password, policy)
    if len(password) > MAX_LENGTH:
        return reasons
    lowered = password.lower()
    words = {w.lower() for c in context for w in re.split(r"[\s@._+-]+", c or "") if len(w) >= 3}
    if any(w in lowered for w in words):
        reasons.append("Don't use your name, your e-mail or the organisation's name.")
    if not reasons:
        result = zxcvbn(password[:SCORED], user_inputs=sorted(words), max_length=SCORED)
        if result["score"] < 3:
            warning = result["feedback"]["warning"] or "It is too easy to guess."
            reasons.append(f"Choose a less common password. {warning}".strip())
    return reasons


def fits_policy(user: User, password: str) -> bool:
    """Tell whether a (correct) password still meets the person's effective length and classes.

    Checked at sign-in, the only moment the password is known. The blocklist and the name
    rules never change with an account's settings and were checked when it was set, so only
    what an account can tighten is checked here (zxcvbn would cost ~10 ms per sign-in).
    """
    return not structural_problems(password, effective_policy(user))


def password_problems(user: User, password: str, accounts: list[Account] | None = None) -> list[str]:
    """Return why the password breaks the person's effective policy (empty when it fits)."""
    found = person_accounts(user, accounts)
    context = [user.name, user.email, "participants portal"] + [a.name for a in found]
    return problems(password, policy_of(found), context)


def check_new_password(user: User, password: str, accounts: list[Account] | None = None) -> None:
    """Raise ServiceError when the password does not fit the person's effective policy."""
    reasons = password_problems(user, password, accounts)
    if reasons:
        raise ServiceError(" ".join(reasons), "password")


def store_password(user: User, password: str) -> None:
    """Hash and store a password; links issued before now stop working (stamp changes)."""
    user.password_hash = hasher().hash(password)
    user.password_changed_at = utcnow()
    user.must_change_password = False
    user.failed_logins = 0
    user.throttled_until = None
