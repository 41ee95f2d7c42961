"""Issue 15, item 2: refusal notices as a digest. Refusals within REFUSAL_DIGEST_MINUTES are
gathered into one notice to the admin who invited, listing them with a link to Users filtered
by refused invitations (where the Users tab counts them)."""
from datetime import timedelta

import sqlalchemy as sa

from portal.extensions import db
from portal.models import OutboxMessage
from portal.models import utcnow
from portal.services import csv_import
from portal.services import invitations
from portal.services import mail
from portal.services import outbox
from tests.builders import csv_bytes
from tests.builders import make_user

REFUSAL = "550 5.1.1 No such user"
FILTERED = "http://portal.test/admin/participants/users/?invitation=refused"


def let_digests_fall_due() -> None:
    """Let the digests' gathering time pass (what REFUSAL_DIGEST_MINUTES of waiting does)."""
    db.session.execute(sa.update(OutboxMessage).where(
        OutboxMessage.kind == "invite_refused", OutboxMessage.state == "pending").values(
            next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def notices() -> list[OutboxMessage]:
    return list(db.session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.kind == "invite_refused").order_by(OutboxMessage.id)))


def test_an_import_with_many_bad_addresses_sends_the_admin_one_notice_listing_them(
    account, smtp, monkeypatch
):
    """Two thousand bad addresses sent 2,000 notices; here 12 (the notice names the first 8)."""
    monkeypatch.setattr(invitations, "DIGEST_LISTED", 8)
    bad = [f"bad{n:02}@nowhere.example" for n in range(12)]
    for address in bad:
        smtp.refuse[address] = REFUSAL
    rows = [(f"Bad {n:02}", address, "") for n, address in enumerate(bad)]
    rows.append(("Good Person", "good@example.com", ""))
    assert csv_import.import_csv(account.admin, csv_bytes(rows)).imported == 13
    report = outbox.deliver_all_due()
    assert (report.sent, report.failed) == (1, 12)
    # Gathered, not sent: one notice waits out the few minutes.
    [digest] = notices()
    assert digest.state == "pending" and digest.next_attempt_at > utcnow() + timedelta(minutes=4)
    assert digest.context["total"] == 12
    assert smtp.to(account.admin.user.email) == []
    let_digests_fall_due()
    outbox.deliver_all_due()
    [notice] = smtp.to(account.admin.user.email)
    assert notice.subject == f"Invitations to {account.name} refused by the mail server"
    assert "The mail server refused 12 invitations" in notice.text
    assert f"Bad 00 <bad00@nowhere.example>: {REFUSAL}" in notice.text
    assert f"Bad 07 <bad07@nowhere.example>: {REFUSAL}" in notice.text
    assert "bad08@nowhere.example" not in notice.text and "... and 4 more." in notice.text
    assert FILTERED in notice.text and "good@example.com" not in notice.text


def test_a_refusal_after_the_digest_went_out_starts_a_new_one(account, smtp):
    smtp.refuse["one@nowhere.example"] = REFUSAL
    smtp.refuse["two@nowhere.example"] = REFUSAL
    invitations.add_person(account.admin, name="One", email="one@nowhere.example")
    outbox.deliver_all_due()
    let_digests_fall_due()
    outbox.deliver_all_due()
    invitations.add_person(account.admin, name="Two", email="two@nowhere.example")
    outbox.deliver_all_due()
    first, second = notices()
    assert (first.state, second.state) == ("sent", "pending")
    assert second.context["total"] == 1
    text = mail.preview(second)
    assert "Two <two@nowhere.example>" in text and "one@nowhere.example" not in text


def test_a_deleted_person_is_no_longer_named_by_a_waiting_digest(account, smtp):
    from portal.services import deletion
    from portal.services.users import Selection

    smtp.refuse["gone@nowhere.example"] = REFUSAL
    smtp.refuse["kept@nowhere.example"] = REFUSAL
    gone = invitations.add_person(account.admin, name="Gone", email="gone@nowhere.example")
    invitations.add_person(account.admin, name="Kept", email="kept@nowhere.example")
    make_user(account, email="fine@example.com", password=None)
    outbox.deliver_all_due()
    deletion.delete_users(account.admin, Selection(ids=(gone.id,)))
    [digest] = notices()
    text = mail.preview(digest)
    assert "kept@nowhere.example" in text and "gone@nowhere.example" not in text
    assert "gone@nowhere.example" not in str(digest.context)  # ids only, never addresses


def test_two_deliverers_refused_at_once_gather_every_name_into_one_notice(
    app, account, smtp, monkeypatch
):
    """Two deliverers (two apps, as two worker processes) meet refusals for the same admin at
    the same time: each refusal joins the waiting digest under its lock, so no name is lost and
    the admin gets one notice, not one per deliverer (on PostgreSQL both found no digest and
    each opened one)."""
    import threading
    import time

    from portal import create_app
    from portal.extensions import sqlite_immediate_begin

    bad = [f"bad{n:02}@nowhere.example" for n in range(30)]
    for address in bad:
        smtp.refuse[address] = REFUSAL
    rows = [(f"Bad {n:02}", address, "") for n, address in enumerate(bad)]
    assert csv_import.import_csv(account.admin, csv_bytes(rows)).imported == 30
    smtp.delay = 0.005  # both deliverers are in their batches at once
    real_enqueue = mail.enqueue

    def slow_to_open_a_digest(kind, *args, **kwargs):
        message = real_enqueue(kind, *args, **kwargs)
        if kind == "invite_refused":
            time.sleep(0.3)  # the other deliverer meets its first refusal meanwhile
        return message

    monkeypatch.setattr(mail, "enqueue", slow_to_open_a_digest)
    config = {key: app.config[key] for key in (
        "TESTING", "SECRET_KEY", "DATABASE_URL", "MAIL_SERVER", "MAIL_PORT",
        "MAIL_DEFAULT_SENDER", "BASE_URL", "REFUSAL_DIGEST_MINUTES")}
    apps = [create_app(dict(config)) for _ in range(2)]
    start = threading.Barrier(2)
    failed: list[int] = []
    errors: list[BaseException] = []

    def deliver(instance):
        token = sqlite_immediate_begin.set(True)  # as `flask worker` runs on SQLite
        try:
            with instance.app_context():
                start.wait()
                while (report := outbox.deliver_due(limit=3)).sent or report.failed:
                    failed.append(report.failed)
                db.session.remove()
                db.engine.dispose()
        except BaseException as error:  # noqa: BLE001  (reported by the test thread)
            errors.append(error)
        finally:
            sqlite_immediate_begin.reset(token)

    threads = [threading.Thread(target=deliver, args=(instance,)) for instance in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == [] and sum(failed) == 30
    db.session.rollback()
    [digest] = notices()
    assert digest.context["total"] == 30
    assert len(set(digest.context["membership_ids"])) == 30
    let_digests_fall_due()
    outbox.deliver_all_due()
    [notice] = smtp.to(account.admin.user.email)
    assert all(address in notice.text for address in bad)
