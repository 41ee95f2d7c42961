"""People: the canonical form of e-mail addresses and phone numbers, finding a person, and
what an account sees of them."""
from dataclasses import dataclass

import email_validator
import phonenumbers
import sqlalchemy as sa
from email_validator import EmailNotValidError
from email_validator import ValidatedEmail
from email_validator import validate_email
from flask import current_app
from flask import has_app_context

from portal.extensions import db
from portal.models import Membership
from portal.models import User
from portal.services import text
from portal.services.errors import ServiceError

DEFAULT_SPECIAL_USE_DOMAINS = ("local",)
_SPECIAL_USE_MESSAGE = "special-use or reserved name"


def accepted_special_use_domains() -> frozenset[str]:
    """Return the special-use domains this deployment accepts (EMAIL_SPECIAL_USE_DOMAINS)."""
    if not has_app_context():
        return frozenset(DEFAULT_SPECIAL_USE_DOMAINS)
    return frozenset(current_app.config["EMAIL_SPECIAL_USE_DOMAINS"])


class _SpecialUseDomains(list):
    """email-validator's list of refused special-use domains, less the ones accepted here.

    The library reads its module-level list on every call and has no option for it; this list
    leaves out, at each call, what the running app's EMAIL_SPECIAL_USE_DOMAINS accepts.
    """

    def __iter__(self):
        accepted = accepted_special_use_domains()
        return (name for name in list.__iter__(self) if name not in accepted)


if not isinstance(email_validator.SPECIAL_USE_DOMAIN_NAMES, _SpecialUseDomains):
    email_validator.SPECIAL_USE_DOMAIN_NAMES = _SpecialUseDomains(
        email_validator.SPECIAL_USE_DOMAIN_NAMES)


def validate_address(value: str, field: str = "email") -> ValidatedEmail:
    """Return email-validator's reading of an address, or a ServiceError naming the problem.

    Special-use domains (.local, .test, …) are refused unless EMAIL_SPECIAL_USE_DOMAINS accepts
    them; that refusal names the setting, for the operator who may want to change it.
    """
    try:
        return validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        message = f"That e-mail address is not valid: {exc}"
        if _SPECIAL_USE_MESSAGE in str(exc):
            accepted = ", ".join(sorted(accepted_special_use_domains())) or "none"
            message += (f" (Operators: PORTAL_EMAIL_SPECIAL_USE_DOMAINS lists the special-use "
                        f"domains accepted; now {accepted}.)")
        raise ServiceError(message, field) from None


def normalise_email(value: str, field: str = "email") -> str:
    """Return the canonical key of an address: email-validator's form, lower-cased.

    Addresses are compared case-insensitively (a documented policy: one person per mailbox,
    whatever the case), so the local part is lower-cased too.
    """
    value = (value or "").strip()
    if not value:
        raise ServiceError("An e-mail address is required.", field)
    text.refuse_control(value, "The e-mail address contains control characters.", field)
    return validate_address(value, field).normalized.lower()


def clean_name(value: str, field: str = "name") -> str:
    """Return a trimmed person name, refusing empty or control characters."""
    value = " ".join((value or "").split())
    if not value:
        raise ServiceError("A name is required.", field)
    if len(value) > 200:
        raise ServiceError("The name is longer than 200 characters.", field)
    text.refuse_control(value, "The name contains control characters.", field)
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


def format_phone(value: str | None) -> str | None:
    """Return a stored (E.164) number in international format; anything unparsable as it is."""
    if not value:
        return value
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def clean_person(name: str, email: str, phone: str | None) -> tuple[str, str, str | None]:
    """Return (name, e-mail key, phone) cleaned, or raise every field's error at once."""
    cleaned, errors = [], []
    for clean, value in ((clean_name, name), (normalise_email, email), (normalise_phone, phone)):
        try:
            cleaned.append(clean(value))
        except ServiceError as error:
            errors.append(error)
    ServiceError.raise_all(errors)
    return cleaned[0], cleaned[1], cleaned[2]


def find_person(email: str) -> User | None:
    """Return the person with this canonical e-mail, whatever their accounts."""
    return db.session.scalar(sa.select(User).where(User.email == email))


def shown_name(memberships=Membership.__table__, people=User.__table__):
    """The name an account sees of its member, as SQL: the one it typed until someone known
    elsewhere accepts its invitation, their own after (DESIGN §1)."""
    return sa.func.coalesce(memberships.c.invited_name, people.c.name)


def shown_phone(memberships=Membership.__table__, people=User.__table__):
    """The phone an account sees of its member, as SQL (see ``shown_name``)."""
    return sa.case((memberships.c.invited_name.is_not(None), memberships.c.invited_phone),
                   else_=people.c.phone)


@dataclass(frozen=True)
class SeenPerson:
    """The person as one account sees them: until someone known elsewhere accepts the
    invitation, the name and phone typed there, and nothing of their own (DESIGN §1)."""

    id: int
    name: str
    email: str
    phone: str | None
    version: int

    @property
    def phone_shown(self) -> str | None:
        """The phone as people read it: international format, +44 20 7946 0958."""
        return format_phone(self.phone)

    @classmethod
    def of(cls, membership: Membership) -> "SeenPerson":
        user = membership.user
        return cls(user.id, membership.shown_name, user.email, membership.shown_phone,
                   user.version)
