"""Test data built through the real services, so it obeys the real rules."""
import itertools
from datetime import datetime
from datetime import timedelta

import sqlalchemy as sa

from portal.extensions import db
from portal.models import ActionToken
from portal.models import Membership
from portal.services import accounts
from portal.services import deletion
from portal.services import groups
from portal.services import invitations
from portal.services import passwords
from portal.services import taskstreams
from portal.services.users import Selection

PASSWORD = "correct horse battery staple"
_numbers = itertools.count(1)


def make_account(name: str | None = None, *, admin_email: str | None = None, **settings):
    """Create an account whose admin has PASSWORD; returns the Account with ``.admin``."""
    n = next(_numbers)
    membership = accounts.create_account(
        name or f"Account {n}",
        admin_email=admin_email or f"admin{n}@example.com",
        admin_name=f"Admin {n}",
        password=PASSWORD,
    )
    account = membership.account
    for key, value in settings.items():
        setattr(account, key, value)
    db.session.commit()
    account.admin = membership
    return account


def make_user(account, *, name: str | None = None, email: str | None = None, role="member",
              password: str | None = PASSWORD, group_ids=()):
    """Add a person to the account (invited); with a password they have accepted."""
    n = next(_numbers)
    membership = invitations.add_person(
        account.admin,
        name=name or f"User {n}",
        email=email or f"user{n}@example.com",
        role=role,
        group_ids=group_ids,
    )
    if password is not None:
        if membership.user.password_hash is None:
            passwords.store_password(membership.user, password)
        accepted(membership)  # a person of another account too: their consent taken as given
    return membership


def accepted(membership):
    """Mark the invitation of someone who already has a password accepted, as
    invitations.accept_invitation would (tests/security T35 goes through the real page)."""
    membership.invite_state = "active"
    membership.invited_name = membership.invited_phone = None
    membership.sort_name = membership.user.name.lower()
    db.session.commit()
    return membership


def age_invitations(minutes: int = 60) -> None:
    """Make every invitation sent so far ``minutes`` older (Resend Invite holds back recent ones)."""
    for token in db.session.scalars(sa.select(ActionToken).where(ActionToken.purpose == "invite")):
        token.created_at -= timedelta(minutes=minutes)
    db.session.commit()


def make_group(account, name: str | None = None, members=()):
    return groups.create_group(account.admin, name or f"Group {next(_numbers)}",
                               [m.id for m in members])


def make_taskstream(account, name: str, steps):
    return taskstreams.create_taskstream(account.admin, name, steps)


CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")


def make_device(user, *, kind: str = "web", name: str | None = None, app_version=None,
                user_agent: str = CHROME_MAC, account=None):
    """Sign the person in on one more device (the device limit applies); returns (device, token).

    The session acts in ``account``, or, like a sign-in, in the person's only account.
    """
    from portal.services import auth

    if account is None:
        memberships = accounts.live_memberships(user)
        account_id = memberships[0].account_id if len(memberships) == 1 else None
    else:
        account_id = account.id
    client = auth.Client(kind=kind, name=name, app_version=app_version, user_agent=user_agent)
    return auth.sign_in(user, client, account_id=account_id)


def delete_users(account, *members, actor=None):
    """Delete these memberships as the account's admin (or ``actor``); returns the report."""
    return deletion.delete_users(actor or account.admin, Selection(ids=[m.id for m in members]))


def backdate_deletion(membership, deleted_at: datetime) -> None:
    """Move a deletion into the past (raw: no service makes a deletion 31 days ago)."""
    db.session.execute(
        sa.update(Membership).where(Membership.id == membership.id).values(deleted_at=deleted_at)
    )
    db.session.commit()
def csv_bytes(rows, header=("Full Name", "Email", "Groups"), *, delimiter=",",
              encoding="utf-8", newline="\r\n") -> bytes:
    """Return a CSV file of these rows (tuples of cells), quoted where needed."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def group_names_of(email: str) -> set[str]:
    """Return the names of the groups the person with this e-mail is in (any account)."""
    from portal.models import Group
    from portal.models import GroupMember
    from portal.models import User

    return set(db.session.scalars(
        sa.select(Group.name).join(GroupMember, GroupMember.group_id == Group.id)
        .join(Membership, Membership.id == GroupMember.membership_id)
        .join(User, User.id == Membership.user_id).where(User.email == email)))
