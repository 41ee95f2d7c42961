"""Account settings that admins change: password policy, second factors, invitations, sender."""
from typing import Any

from portal.extensions import db
from portal.models import Account
from portal.models.second_factor import SECOND_FACTOR_RULES
from portal.services import audit
from portal.services import passwords
from portal.services import text
from portal.services.errors import Forbidden
from portal.services.errors import ServiceError

MIN_LENGTH_RANGE = (passwords.FLOOR, 128)
INVITE_HOURS_RANGE = (1, 720)
RANGES = {"password_min_length": MIN_LENGTH_RANGE, "invite_valid_hours": INVITE_HOURS_RANGE}


def _in_range(value: Any, bounds: tuple[int, int], field: str, what: str) -> int:
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ServiceError(f"{what} must be a whole number from {low} to {high}.", field)
    return value


def _sender_name(value: str | None) -> str | None:
    # A display name goes into the From header: no line breaks or other control characters.
    text.refuse_control(value, "The sender name cannot contain control characters.",
                        "sender_name")
    value = " ".join((value or "").split())
    if len(value) > 120:
        raise ServiceError("The sender name is longer than 120 characters.", "sender_name")
    return value or None


def update_settings(
    actor,
    *,
    password_min_length: int,
    password_require_classes: bool,
    invite_valid_hours: int,
    sender_name: str | None,
    second_factor_rule: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Change the account's settings; the audit event keeps each old and new value.

    A stricter password policy takes effect for people at their next sign-in (the only
    moment their password is known), where those whose password no longer fits must change it.
    Returns the changes (empty when nothing changed).
    """
    if not actor.is_admin:
        raise Forbidden("Only administrators can change the settings.")
    new = {
        "password_min_length": _in_range(
            password_min_length, MIN_LENGTH_RANGE, "password_min_length", "The minimum length"
        ),
        "password_require_classes": bool(password_require_classes),
        "invite_valid_hours": _in_range(
            invite_valid_hours, INVITE_HOURS_RANGE, "invite_valid_hours", "The invitation validity"
        ),
        "sender_name": _sender_name(sender_name),
    }
    account: Account = db.session.get(Account, actor.account_id)
    if second_factor_rule is not None:
        if second_factor_rule not in SECOND_FACTOR_RULES:
            raise ServiceError("Choose who must use a second factor.", "second_factor_rule")
        new["second_factor_rule"] = second_factor_rule
    changes = {
        key: {"old": getattr(account, key), "new": value}
        for key, value in new.items()
        if getattr(account, key) != value
    }
    if not changes:
        return changes
    for key, change in changes.items():
        setattr(account, key, change["new"])
    audit.record(actor, "settings.changed", changes=changes)
    db.session.commit()
    return changes
