"""Admins helping people with second factors: whether they have one, and Reset second factors.

An admin sees only whether the person has a factor, never which or its details; the reset is
allowed only for people whose every live membership is in an account the admin administers
(the rule for identity-level secrets, services.profiles.can_change_identity).
"""
from dataclasses import dataclass

from portal.extensions import db
from portal.services import mail
from portal.services import profiles
from portal.services import second_factors
from portal.services import users
from portal.services.errors import Forbidden
from portal.services.errors import ServiceError

ELSEWHERE = (
    "This person also belongs to an organisation you don't administer, so you cannot reset "
    "their second factors. Ask them to use a recovery code, or an administrator of every "
    "organisation they belong to."
)


@dataclass(frozen=True)
class SecondFactorSummary:
    """What User Details shows: a yes or no, and whether this admin may reset."""

    has_factor: bool
    can_reset: bool


def summary(actor, user) -> SecondFactorSummary:
    has = second_factors.has_factor(user.id)
    return SecondFactorSummary(has, has and profiles.can_change_identity(actor, user))


def reset(actor, membership_id):
    """Remove every second factor and recovery code of the person; audit and e-mail them."""
    membership = users.get_user(actor, membership_id)
    user = membership.user
    if not profiles.can_change_identity(actor, user):
        raise Forbidden(ELSEWHERE)
    if not second_factors.has_factor(user.id):
        raise ServiceError(f"{user.name} has no second factor to reset.")
    removed = second_factors.reset_all(user)
    second_factors.record(user, "second_factor.reset_by_admin", actor=actor, removed=removed)
    mail.enqueue(
        "second_factors_reset",
        user.email,
        mail.subject("second_factors_reset"),
        account=membership.account,
        user_id=user.id,
        name=user.name,
        admin_name=actor.user.name,
        url=mail.link("/account/security"),
    )
    db.session.commit()
    return user
