"""Issue 15, item 1: where each invitation stands (queued → sent → refused → accepted, or expired),
filtered, counted, and resent to everyone whose invitation expired or was refused."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import ActionToken
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import utcnow
from portal.services import invitation_states
from portal.services import invitations
from portal.services import outbox
from portal.services import users
from portal.services.users import UserFilter
from tests.builders import PASSWORD
from tests.builders import make_user
from tests.mailbox import delivered_link

REFUSAL = "550 5.1.1 No such user"


def expire(*memberships, hours: int = 1) -> None:
    """Let the invitation links of these memberships run out ``hours`` ago (time passing)."""
    for membership in memberships:
        db.session.refresh(membership)
        past = utcnow() - timedelta(hours=hours)
        db.session.execute(sa.update(ActionToken).where(
            ActionToken.user_id == membership.user_id, ActionToken.purpose == "invite",
            ActionToken.account_id == membership.account_id).values(
                expires_at=past, created_at=past - timedelta(hours=72)))
        membership.invite_expires_at = past
    db.session.commit()


def standing(membership) -> str | None:
    db.session.expire_all()
    return db.session.get(Membership, membership.id).invitation


def listed(account, invitation: str) -> set[str]:
    page = users.list_users(account.admin, UserFilter(invitation=invitation))
    return {row.email for row in page.rows}


def test_an_invitation_is_queued_then_sent_then_accepted(app, account, smtp):
    account.invite_valid_hours = 24  # Settings: the link's validity
    db.session.commit()
    waiting = make_user(account, email="ana@example.com", password=None)
    assert standing(waiting) == "queued"
    expires = db.session.get(Membership, waiting.id).invite_expires_at
    assert abs(expires - (utcnow() + timedelta(hours=24))) < timedelta(minutes=1)
    link = delivered_link(smtp, "ana@example.com", "/invite/")
    assert standing(waiting) == "sent"
    assert db.session.get(Membership, waiting.id).invite_sent_at is not None
    response = app.test_client().post(link, data={"password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    assert standing(waiting) == "accepted"


def test_a_refused_invitation_shows_the_servers_reason_and_a_resend_queues_it_again(
    account, smtp
):
    smtp.refuse["typo@nowhere.example"] = REFUSAL
    membership = invitations.add_person(account.admin, name="Typo", email="typo@nowhere.example")
    outbox.deliver_due()
    assert standing(membership) == "refused"
    [row] = users.list_users(account.admin, UserFilter(invitation="refused")).rows
    assert (row.invitation, row.invite_error) == ("refused", REFUSAL)
    invitations.resend_invites(account.admin, users.Selection(ids=(membership.id,)))
    assert standing(membership) == "queued"


def test_an_unaccepted_invitation_expires_when_its_link_runs_out(app, account, smtp):
    queued = make_user(account, email="queued@example.com", password=None)
    sent = make_user(account, email="sent@example.com", password=None)
    delivered_link(smtp, "sent@example.com", "/invite/")
    expire(queued, sent)
    assert standing(queued) == standing(sent) == "expired"
    assert listed(account, "expired") == {"queued@example.com", "sent@example.com"}
    assert listed(account, "queued") == listed(account, "sent") == set()


def test_each_invitation_filter_lists_exactly_its_people(account, smtp):
    smtp.refuse["refused@nowhere.example"] = REFUSAL
    make_user(account, email="accepted@example.com")
    make_user(account, email="sent@example.com", password=None)
    refused = invitations.add_person(account.admin, name="R", email="refused@nowhere.example")
    outbox.deliver_all_due()
    make_user(account, email="queued@example.com", password=None)
    expired = make_user(account, email="expired@example.com", password=None)
    expire(expired)
    admin = account.admin.user.email
    assert listed(account, "queued") == {"queued@example.com"}
    assert listed(account, "sent") == {"sent@example.com"}
    assert listed(account, "refused") == {"refused@nowhere.example"}
    assert listed(account, "accepted") == {"accepted@example.com", admin}
    assert listed(account, "expired") == {"expired@example.com"}
    assert listed(account, invitation_states.LAPSED) == {"expired@example.com",
                                                          "refused@nowhere.example"}
    summary = invitation_states.summary(account.admin)
    assert (summary.expired, summary.refused) == (1, 1)
    assert str(summary) == "1 invitation expired, 1 refused"
    assert refused.id in {r.id for r in users.list_users(
        account.admin, UserFilter(invitation="refused", q="refused")).rows}


def test_resend_to_every_lapsed_invitation_sends_only_to_expired_and_refused(account, smtp):
    smtp.refuse["bad@nowhere.example"] = REFUSAL
    invitations.add_person(account.admin, name="Bad", email="bad@nowhere.example")
    outbox.deliver_all_due()
    old = make_user(account, email="old@example.com", password=None)
    make_user(account, email="fresh@example.com", password=None)
    make_user(account, email="done@example.com")
    expire(old, hours=5)
    before = db.session.scalar(sa.select(sa.func.max(OutboxMessage.id)))
    report = invitations.resend_lapsed(account.admin)
    assert report.resent == 2
    resent = set(db.session.scalars(sa.select(OutboxMessage.to_addr).where(
        OutboxMessage.id > before, OutboxMessage.kind == "invite")))
    assert resent == {"bad@nowhere.example", "old@example.com"}
    summary = invitation_states.summary(account.admin)
    assert (summary.expired, summary.refused) == (0, 0)
    assert listed(account, "queued") == {"bad@nowhere.example", "old@example.com",
                                         "fresh@example.com"}


@pytest.mark.parametrize("invitation", ["queued", "sent", "refused", "accepted", "expired"])
def test_deleted_users_are_never_counted_or_listed(account, invitation):
    from portal.services import deletion

    gone = make_user(account, email="gone@example.com", password=None)
    expire(gone)
    deletion.delete_users(account.admin, users.Selection(ids=(gone.id,)))
    assert "gone@example.com" not in listed(account, invitation)
    assert invitation_states.summary(account.admin).expired == 0


def test_imported_people_stand_queued_until_their_link_runs_out(account):
    from portal.services import csv_import
    from tests.builders import csv_bytes

    result = csv_import.import_csv(account.admin, csv_bytes([
        ("Ada", "ada@example.com", ""), ("Ben", "ben@example.com", "")]))
    assert result.imported == 2
    assert listed(account, "queued") == {"ada@example.com", "ben@example.com"}
    [token_expiry] = set(db.session.scalars(sa.select(ActionToken.expires_at).where(
        ActionToken.purpose == "invite", ActionToken.account_id == account.id,
        ActionToken.used_at.is_(None))))
    for membership in db.session.scalars(sa.select(Membership).where(
            Membership.import_id.is_not(None))):
        assert abs(membership.invite_expires_at - token_expiry) < timedelta(seconds=5)
        expire(membership)
    assert listed(account, "expired") == {"ada@example.com", "ben@example.com"}


def test_the_header_counts_stop_at_a_cap_and_the_confirmation_counts_exactly(
    account, monkeypatch
):
    """Every Users page view counts: the walk stops at SUMMARY_CAP (1,000) and says "+"."""
    monkeypatch.setattr(invitation_states, "SUMMARY_CAP", 2)
    expire(*[make_user(account, password=None) for _ in range(3)])
    capped = invitation_states.summary(account.admin)
    assert capped.expired == 2 and str(capped) == "2+ invitations expired"
    exact = invitation_states.summary(account.admin, exact=True)
    assert exact.expired == 3 and str(exact) == "3 invitations expired"
