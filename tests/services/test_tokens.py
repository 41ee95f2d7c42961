"""Invitation and reset links: single use, superseded, expiring, bound to the password."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import ActionToken
from portal.models import OutboxMessage
from portal.models import utcnow
from portal.services import auth
from portal.services import invitations
from portal.services import passwords
from portal.services.errors import ServiceError
from portal.services.tokens import LinkInvalid
from tests.builders import PASSWORD
from tests.builders import make_account
from tests.builders import make_user
from tests.mailbox import delivered_link

NEW_PASSWORD = "purple elephant juggling oranges"


def latest_link(smtp, kind: str) -> str:
    """The token of the newest ``kind`` link, read from the mail its recipient got."""
    message = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id.desc())
    ).first()
    path = {"reset_password": "/reset-password/", "invite": "/invite/"}[kind]
    return delivered_link(smtp, message.to_addr, path).rsplit("/", 1)[1]


def test_tokens_are_stored_only_as_sha256(account, smtp):
    auth.request_password_reset(account.admin.user.email)
    raw = latest_link(smtp, "reset_password")
    stored = db.session.scalar(sa.select(ActionToken.token_hash).where(ActionToken.purpose == "reset"))
    assert raw not in stored and len(stored) == 64
    assert len(raw) >= 43  # 256 bits, urlsafe


def test_reset_link_works_once_and_ends_every_session(account, smtp):
    user = account.admin.user
    auth.sign_in(user, auth.Client())
    auth.request_password_reset(user.email)
    raw = latest_link(smtp, "reset_password")
    auth.reset_password(raw, NEW_PASSWORD)
    assert passwords.verify(user, NEW_PASSWORD)
    assert db.session.scalar(
        sa.select(sa.func.count()).select_from(auth.Device).where(auth.Device.revoked_at.is_(None))
    ) == 0
    with pytest.raises(LinkInvalid, match="already been used"):
        auth.reset_password(raw, "another long passphrase here")
    assert db.session.scalar(
        sa.select(OutboxMessage.subject).where(OutboxMessage.kind == "password_changed")
    ) == "Your password was changed"


def test_an_older_reset_link_is_superseded_by_a_newer_one(account, smtp):
    auth.request_password_reset(account.admin.user.email)
    older = latest_link(smtp, "reset_password")
    auth.request_password_reset(account.admin.user.email)
    newer = latest_link(smtp, "reset_password")
    with pytest.raises(LinkInvalid):
        auth.reset_password(older, NEW_PASSWORD)
    auth.reset_password(newer, NEW_PASSWORD)


def test_a_reset_link_dies_when_the_password_changes_another_way(account, smtp):
    user = account.admin.user
    auth.request_password_reset(user.email)
    raw = latest_link(smtp, "reset_password")
    passwords.store_password(user, "some other passphrase entirely")
    db.session.commit()
    with pytest.raises(LinkInvalid, match="password changed"):
        auth.reset_password(raw, NEW_PASSWORD)


def test_an_expired_reset_link_is_refused(account, smtp):
    auth.request_password_reset(account.admin.user.email)
    raw = latest_link(smtp, "reset_password")
    token = db.session.scalar(sa.select(ActionToken).where(ActionToken.purpose == "reset"))
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    with pytest.raises(LinkInvalid, match="expired"):
        auth.reset_password(raw, NEW_PASSWORD)


def test_reset_requests_for_unknown_people_do_nothing(account):
    auth.request_password_reset("nobody@example.com")
    auth.request_password_reset("not an address")
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id)).where(
        OutboxMessage.kind == "reset_password")) == 0


def test_at_most_three_reset_mails_per_person_per_hour(account):
    for _ in range(5):
        auth.request_password_reset(account.admin.user.email)
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id)).where(
        OutboxMessage.kind == "reset_password")) == 3


def test_an_invite_token_does_not_work_as_a_reset_token(account, smtp):
    make_user(account, password=None)
    raw = latest_link(smtp, "invite")
    with pytest.raises(LinkInvalid):
        auth.reset_password(raw, NEW_PASSWORD)


def test_accepting_an_invitation_sets_the_password_once(account, smtp):
    invited = make_user(account, password=None)
    raw = latest_link(smtp, "invite")
    with pytest.raises(ServiceError, match="at least 12"):
        invitations.accept_invitation(raw, "short")
    membership = invitations.accept_invitation(raw, NEW_PASSWORD)
    assert membership.invite_state == "active"
    assert passwords.verify(invited.user, NEW_PASSWORD)
    with pytest.raises(LinkInvalid):
        invitations.accept_invitation(raw, "yet another long passphrase")


def test_an_existing_person_accepts_an_invitation_with_the_password_they_have(account, smtp):
    other = make_account()
    invitations.send_invitation(other.admin, make_user(other, email=account.admin.user.email))
    db.session.commit()
    raw = latest_link(smtp, "invite")
    membership, needs_password = invitations.invitation_details(raw)
    assert needs_password is False
    with pytest.raises(ServiceError, match="Enter your password"):
        invitations.accept_invitation(raw, None)
    invitations.accept_invitation(raw, PASSWORD)
    assert passwords.verify(account.admin.user, PASSWORD)  # untouched
    assert membership.account_id == other.id


def test_resending_an_invitation_invalidates_the_old_link(account, smtp):
    invited = make_user(account, password=None)
    old = latest_link(smtp, "invite")
    invitations.send_invitation(account.admin, invited)
    db.session.commit()
    with pytest.raises(LinkInvalid):
        invitations.invitation_details(old)
    invitations.invitation_details(latest_link(smtp, "invite"))
