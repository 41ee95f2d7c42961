"""The durable outbox: delivery, retry with back-off, refusal, and no double send."""
import socket
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db
from portal.extensions import sqlite_immediate_begin
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import utcnow
from portal.services import mail
from portal.services import outbox
from tests.builders import make_user
from tests.services.test_refusal_digest import let_digests_fall_due


def queue(n: int, account=None) -> None:
    for i in range(n):
        mail.enqueue("password_changed", f"person{i}@example.com", f"Message {i}",
                     account=account, name=f"Person {i}", url="http://portal.test/x")
    db.session.commit()


def states() -> dict[str, int]:
    rows = db.session.execute(
        sa.select(OutboxMessage.state, sa.func.count()).group_by(OutboxMessage.state)
    )
    return dict(rows.all())


def test_due_messages_are_sent_once_with_the_account_as_sender_name(account, smtp):
    queue(3, account)
    report = outbox.deliver_due()
    assert (report.sent, report.failed, report.retrying) == (3, 0, 0)
    assert len(smtp.messages) == 3
    received = smtp.to("person0@example.com")[0]
    assert received.subject == "Message 0"
    assert account.name in str(received.message["From"])
    assert received.message["X-Portal-Message-Id"]
    assert outbox.deliver_due().sent == 0  # nothing is sent twice
    assert states() == {"sent": 3}


def test_a_temporary_refusal_is_retried_later_with_back_off(app, smtp):
    queue(1)
    smtp.refuse["person0@example.com"] = "451 4.3.0 Try again later"
    report = outbox.deliver_due()
    assert report.retrying == 1
    message = db.session.scalar(sa.select(OutboxMessage))
    assert message.state == "pending" and message.attempts == 1
    assert message.next_attempt_at > utcnow() + timedelta(seconds=20)
    assert message.last_error.startswith("451")
    assert outbox.deliver_due().sent == 0  # not due yet
    smtp.refuse.clear()
    message.next_attempt_at = utcnow()
    db.session.commit()
    assert outbox.deliver_due().sent == 1
    assert len(smtp.messages) == 1


def test_a_permanent_refusal_fails_the_message_with_the_servers_reply(app, smtp):
    queue(1)
    smtp.refuse["person0@example.com"] = "550 5.1.1 No such user here"
    assert outbox.deliver_due().failed == 1
    message = db.session.scalar(sa.select(OutboxMessage))
    assert message.state == "failed"
    assert message.last_error == "550 5.1.1 No such user here"
    smtp.refuse.clear()
    assert outbox.deliver_due().sent == 0  # a refused message is not retried


def test_a_refused_invitation_marks_the_user_and_tells_the_inviting_admin(account, smtp):
    invited = make_user(account, email="ghost@example.com", password=None)
    smtp.refuse["ghost@example.com"] = "550 5.1.1 Mailbox unavailable"
    outbox.deliver_due()
    membership = db.session.get(Membership, invited.id)
    db.session.refresh(membership)
    assert membership.invite_state == "invite_failed"
    assert "Mailbox unavailable" in membership.invite_error
    let_digests_fall_due()  # refusals are gathered for a few minutes (issue 15, item 2)
    outbox.deliver_due()
    notice = smtp.to(account.admin.user.email)[0]
    assert "refused by the mail server" in notice.subject
    assert "<ghost@example.com>: 550 5.1.1 Mailbox unavailable" in notice.text


@pytest.mark.config(MAIL_PORT=1)  # nothing listens on port 1
def test_an_unreachable_server_is_retried(app):
    queue(1)
    assert outbox.deliver_due().retrying == 1
    assert states() == {"pending": 1}


def test_a_silent_server_times_out_instead_of_hanging(app, smtp):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        app.extensions["mail"].port = silent.getsockname()[1]  # Flask-Mail reads config once
        app.config["SMTP_TIMEOUT"] = 0.5
        queue(1)
        assert outbox.deliver_due().retrying == 1
    assert "timed out" in db.session.scalar(sa.select(OutboxMessage.last_error))


def test_a_message_that_keeps_failing_is_given_up_after_the_retry_period(app, smtp):
    queue(1)
    message = db.session.scalar(sa.select(OutboxMessage))
    message.created_at = utcnow() - timedelta(hours=25)
    db.session.commit()
    smtp.refuse["person0@example.com"] = "421 4.7.0 Busy"
    assert outbox.deliver_due().failed == 1


@pytest.mark.config(MAIL_SERVER=None)
def test_without_smtp_mail_stays_in_the_outbox(app):
    queue(2)
    assert outbox.deliver_due().sent == 0
    assert outbox.pending_count() == 2


def test_two_deliverers_racing_never_send_a_message_twice(app, smtp):
    queue(40)
    config = {key: app.config[key] for key in (
        "TESTING", "SECRET_KEY", "DATABASE_URL", "MAIL_SERVER", "MAIL_PORT", "MAIL_DEFAULT_SENDER",
        "BASE_URL")}
    apps = [create_app(dict(config)) for _ in range(2)]
    reports = []
    start = threading.Barrier(2)

    def deliver(instance):
        with instance.app_context():
            start.wait()
            total = 0
            while sent := outbox.deliver_due(limit=5).sent:
                total += sent
            reports.append(total)
            db.session.remove()
            db.engine.dispose()

    threads = [threading.Thread(target=deliver, args=(a,)) for a in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(reports) == 40
    subjects = [m.subject for m in smtp.messages]
    assert len(subjects) == 40 and len(set(subjects)) == 40


def test_a_claim_abandoned_by_a_dead_deliverer_is_taken_over_when_its_lease_passes(app, smtp):
    queue(1)
    assert outbox.claim("dead-worker") != []
    assert outbox.deliver_due().sent == 0  # claimed by someone else, recently
    message = db.session.scalar(sa.select(OutboxMessage))
    # A short lease, not ten minutes: the dead deliverer renews nothing.
    assert message.lease_until <= utcnow() + timedelta(seconds=app.config["JOB_LEASE_SECONDS"])
    assert app.config["JOB_LEASE_SECONDS"] <= 60
    message.lease_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert outbox.deliver_due().sent == 1


# The heartbeat renews every third of the lease, so a renewal may come up to two thirds of a
# lease late (1 s here) before a claim passes: 0.6 s leases left 0.4 s on a loaded machine.
@pytest.mark.config(JOB_LEASE_SECONDS=1.5)
def test_a_living_deliverer_renews_its_claims_so_nobody_takes_them_over(app, smtp, monkeypatch):
    queue(3)
    taken_over = []
    real_send = outbox._send

    def slow_send(connection, mail_message):
        # Three leases long in all: another deliverer tries to claim meanwhile and gets nothing.
        import time
        time.sleep(1.5)
        taken_over.extend(outbox.claim("another-deliverer"))
        real_send(connection, mail_message)

    monkeypatch.setattr(outbox, "_send", slow_send)
    token = sqlite_immediate_begin.set(True)
    try:
        report = outbox.deliver_due("living")
    finally:
        sqlite_immediate_begin.reset(token)
    assert report.sent == 3 and taken_over == []
    assert len(smtp.messages) == 3 and states() == {"sent": 3}


def test_one_connection_carries_the_batch_and_each_message_is_recorded_when_accepted(
        app, smtp, monkeypatch):
    queue(3)
    seen = []
    real_send = outbox._send

    def send(connection, mail_message):
        # Every message before this one is recorded as sent already, on the same connection.
        with db.engine.connect() as conn:
            seen.append(conn.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                                    .where(OutboxMessage.state == "sent")))
        real_send(connection, mail_message)
        seen.append(id(connection.connection))

    monkeypatch.setattr(outbox, "_send", send)
    assert outbox.deliver_due().sent == 3
    assert seen[0::2] == [0, 1, 2]
    assert len(set(seen[1::2])) == 1
