"""Accounts: create one with its first admin, choose the acting account, operator settings."""
import functools
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from portal.extensions import db
from portal.models import Account
from portal.models import Device
from portal.models import InviteState
from portal.models import Membership
from portal.models import Role
from portal.models import User
from portal.services import audit
from portal.services import people
from portal.services.errors import NotFound
from portal.services.errors import ServiceError


@dataclass
class Operator:
    """The acting party of a CLI command: an admin of one account with no person behind it.

    Made from the account's id alone; the account itself is read when something needs more of
    it than its id (from the session's identity map when it is already loaded), so an actor
    made for each of a SCIM sync pass's thousand requests costs no read."""

    account_id: int
    user: User | None = None
    user_id: int | None = None
    id: int | None = None
    role: str = Role.ADMIN
    # An operator may change identity-level data of any person in its account; a SCIM token
    # only of people wholly inside it (ScimActor).
    scoped: bool = False

    @functools.cached_property
    def account(self) -> Account:
        return db.session.get(Account, self.account_id)

    @property
    def is_admin(self) -> bool:
        return True

    @property
    def audit_label(self) -> str:
        return "operator (CLI)"


def has_accounts() -> bool:
    """Tell whether the installation has any account yet (first start)."""
    return db.session.scalar(sa.select(Account.id).limit(1)) is not None


def find_account(name: str) -> Account:
    """Return the account with this name (case-insensitive) or raise NotFound."""
    account = db.session.scalar(
        sa.select(Account).where(Account.name_key == (name or "").strip().lower())
    )
    if account is None:
        raise NotFound(f"No account named {name!r}.")
    return account


def operator(name: str) -> Operator:
    """Return the CLI actor for the named account."""
    return Operator(find_account(name).id)


def create_account(
    name: str, *, admin_email: str, admin_name: str | None = None, password: str | None = None
) -> Membership:
    """Create an account and its first admin (who gets a password or an invitation)."""
    from portal.services import invitations
    from portal.services import passwords

    name = " ".join((name or "").split())
    if not name or len(name) > 120 or not name.isprintable():
        raise ServiceError("An account name of 1 to 120 printable characters is required.", "name")
    if db.session.scalar(sa.select(Account.id).where(Account.name_key == name.lower())):
        raise ServiceError(f"An account named {name!r} already exists.", "name")
    email = people.normalise_email(admin_email)
    account = Account(
        name=name,
        name_key=name.lower(),
        device_limit=current_app.config["DEFAULT_DEVICE_LIMIT"],
    )
    db.session.add(account)
    user = people.find_person(email)
    if user is None:
        user = User(email=email, name=(admin_name or email.split("@")[0]).strip()[:200])
        db.session.add(user)
    db.session.flush()
    membership = Membership(account=account, user=user, role=Role.ADMIN, invite_state=InviteState.INVITED)
    db.session.add(membership)
    db.session.flush()
    if password is not None:
        passwords.check_new_password(user, password, accounts=[account])
        passwords.store_password(user, password)
    if user.password_hash is not None:
        membership.invite_state = InviteState.ACTIVE
    else:
        invitations.send_invitation(None, membership)
    audit.record(None, "account.created", subject=user, account_id=account.id, name=name)
    db.session.commit()
    return membership


def live_memberships(user: User) -> list[Membership]:
    """Return the memberships the person may act in, admin ones first: not deleted, and
    joined (an invitation not yet accepted opens nothing, whoever set the password)."""
    return list(
        db.session.scalars(
            sa.select(Membership)
            .where(
                Membership.user_id == user.id,
                Membership.deleted_at.is_(None),
                Membership.invite_state == "active",
            )
            .order_by(Membership.role.desc(), Membership.account_id)
        )
    )


def acting_membership(device: Device) -> Membership | None:
    """Return the joined membership a device acts as (None before an account is chosen)."""
    if device.account_id is None:
        return None
    return db.session.scalar(
        sa.select(Membership).where(
            Membership.user_id == device.user_id,
            Membership.account_id == device.account_id,
            Membership.deleted_at.is_(None),
            # An invitation opens its account only once accepted.
            Membership.invite_state == InviteState.ACTIVE,
        )
    )


def set_device_limit(name: str, limit: int) -> Account:
    """Set an account's device limit (operators only, through the CLI)."""
    if not 1 <= limit <= 20:
        raise ServiceError("The device limit must be between 1 and 20.", "device_limit")
    account = find_account(name)
    old = account.device_limit
    account.device_limit = limit
    audit.record(Operator(account.id), "account.device_limit", old=old, new=limit)
    db.session.commit()
    return account
