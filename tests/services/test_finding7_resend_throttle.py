"""Issue 11, finding 7: at most one invitation per person per few minutes, however many
admins press Resend Invite at once (threads on two app instances; SQLite or PostgreSQL)."""
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db
from portal.models import ActionToken
from portal.models import Membership
from portal.models import OutboxMessage
from portal.services import invitations
from portal.services import outbox
from portal.services.users import Selection
from tests.builders import age_invitations
from tests.builders import make_user

SHARED = ("TESTING", "SECRET_KEY", "DATABASE_URL", "MAIL_SERVER", "MAIL_PORT", "BASE_URL",
          "MAIL_DEFAULT_SENDER", "ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM")


def invitations_to(address: str) -> int:
    db.session.commit()
    return db.session.scalar(sa.select(sa.func.count(OutboxMessage.id)).where(
        OutboxMessage.kind == "invite", OutboxMessage.to_addr == address))


def test_eight_simultaneous_resends_send_one_invitation(app, account):
    waiting = make_user(account, email="racer@example.com", password=None)
    age_invitations(10)
    admin_id, waiting_id = account.admin.id, waiting.id
    assert invitations_to("racer@example.com") == 1
    config = {key: app.config[key] for key in SHARED}
    instances = [create_app(dict(config)) for _ in range(2)]
    start = threading.Barrier(8)
    answers, errors = [], []

    def resend(instance):
        with instance.app_context():
            try:
                actor = db.session.get(Membership, admin_id)
                db.session.commit()  # SQLite: a transaction holds the write lock from BEGIN
                start.wait(30)
                answers.append(str(invitations.resend_invites(actor, Selection(ids=(waiting_id,)))))
            except Exception as exc:  # noqa: BLE001 (reported below, with its type)
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=resend, args=(instance,)) for instance in instances * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for instance in instances:
        with instance.app_context():
            db.engine.dispose()
    assert errors == []
    assert invitations_to("racer@example.com") == 2  # the first one and exactly one resend
    assert sorted(answers) == ["An invitation was already sent 0 minutes ago; no new one was sent."] * 7 + [
        "Invite resent to 1 user."]
    live = db.session.scalar(sa.select(sa.func.count(ActionToken.id)).where(
        ActionToken.purpose == "invite", ActionToken.used_at.is_(None)))
    assert live == 1


def test_resend_says_when_the_last_invitation_went_out_and_sends_again_after_the_pause(
    admin, account
):
    waiting = make_user(account, email="later@example.com", password=None)
    path = f"/admin/participants/users/{waiting.id}/resend-invite"
    page = admin.post(path, follow_redirects=True).get_data(as_text=True)
    assert "An invitation was already sent 0 minutes ago; no new one was sent." in page
    assert invitations_to("later@example.com") == 1
    age_invitations(3)
    page = admin.post(path, follow_redirects=True).get_data(as_text=True)
    assert "already sent 3 minutes ago" in page and invitations_to("later@example.com") == 1
    age_invitations(3)
    page = admin.post(path, follow_redirects=True).get_data(as_text=True)
    assert "Invite resent to 1 user." in page and invitations_to("later@example.com") == 2


@pytest.mark.config(INVITE_RESEND_MINUTES=30)
def test_the_pause_is_a_setting_and_the_bulk_answer_counts_the_recent_ones(account):
    fresh = make_user(account, password=None)
    age_invitations(20)
    old = make_user(account, password=None)
    for token in db.session.scalars(sa.select(ActionToken).where(
            ActionToken.user_id == old.user_id)):
        token.created_at -= timedelta(minutes=31)
    db.session.commit()
    report = invitations.resend_invites(account.admin, Selection(ids=(fresh.id, old.id)))
    assert (report.resent, report.recent) == (1, 1)
    assert str(report) == ("Invite resent to 1 user; 1 skipped because an invitation was "
                           "already sent to them in the last 30 minutes.")


def test_an_invitation_the_mail_server_refused_can_be_resent_at_once(account, smtp):
    smtp.refuse["bounce@example.com"] = "550 5.1.1 No such user"
    membership = make_user(account, email="bounce@example.com", password=None)
    outbox.deliver_due()
    db.session.refresh(membership)
    assert membership.invite_state == "invite_failed"
    report = invitations.resend_invites(account.admin, Selection(ids=(membership.id,)))
    assert report.resent == 1
