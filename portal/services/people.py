"""People: the canonical form of e-mail addresses and phone numbers, and finding a person."""
import re

import phonenumbers
import sqlalchemy as sa
from email_validator import EmailNotValidError
from email_validator import validate_email

from portal.extensions import db
from portal.models import User
from portal.services.errors import ServiceError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise_email(value: str, field: str = "email") -> str:
    """Return the canonical key of an address: email-validator's form, lower-cased.

    Addresses are compared case-insensitively (a documented policy: one person per mailbox,
    whatever the case), so the local part is lower-cased too.
    """
    value = (value or "").strip()
    if not value:
        raise ServiceError("An e-mail address is required.", field)
    if _CONTROL.search(value):
        raise ServiceError("The e-mail address contains control characters.", field)
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ServiceError(f"That e-mail address is not valid: {exc}", field) from None
    return result.normalized.lower()


def clean_name(value: str, field: str = "name") -> str:
    """Return a trimmed person name, refusing empty or control characters."""
    value = " ".join((value or "").split())
    if not value:
        raise ServiceError("A name is required.", field)
    if len(value) > 200:
        raise ServiceError("The name is longer than 200 characters.", field)
    if _CONTROL.search(value):
        raise ServiceError("The name contains control characters.", field)
    return value


def normalise_phone(value: str | None, region: str | None = None, field: str = "phone") -> str | None:
    """Return the number in E.164, None when empty; international format unless a region given."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ServiceError(
            "That is not a phone number; use the international form, e.g. +44 20 7946 0958.", field
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ServiceError("That phone number is not valid.", field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def find_person(email: str) -> User | None:
    """Return the person with this canonical e-mail, whatever their accounts."""
    return db.session.scalar(sa.select(User).where(User.email == email))
