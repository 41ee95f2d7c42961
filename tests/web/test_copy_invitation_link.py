"""Issue 15, item 3: invitations on an intranet without mail. Copy invitation link mints a fresh
link (the older ones stop working), only for someone with no password and no other account,
asks first when it stops a link that went out, and is audited; Outgoing mail is paged,
searched, filtered by state and totalled, and never shows a link."""
import re

import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Membership
from portal.models import OutboxMessage
from portal.services import auth
from portal.services import mail
from portal.services import outbox
from tests.builders import PASSWORD
from tests.builders import make_account
from tests.builders import make_user
from tests.mailbox import delivered_link

HX = {"HX-Request": "true"}
USERS = "/admin/participants/users/"
LINK = re.compile(r"http://portal\.test(/invite/[\w-]{20,})")


def copy(client, membership_id, **data):
    return client.post(f"{USERS}{membership_id}/copy-invitation-link", data=data, headers=HX)


def test_copying_a_queued_invitation_mints_a_link_that_works_and_replaces_the_queued_one(
    app, admin, account, smtp
):
    waiting = make_user(account, name="New Person", email="new@example.com", password=None)
    details = admin.get(f"{USERS}{waiting.id}").get_data(as_text=True)
    assert ">Copy invitation link</button>" in details and LINK.search(details) is None
    response = copy(admin, waiting.id)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    [link] = LINK.findall(html)
    assert "the queued e-mail will not be sent" in html and 'data-copy="invitation-link"' in html
    assert response.headers["Cache-Control"] == "no-store"
    # Shown in that answer only: the page never shows it again, nor does Outgoing mail.
    assert LINK.search(admin.get(f"{USERS}{waiting.id}").get_data(as_text=True)) is None
    assert LINK.search(admin.get("/admin/outbox/").get_data(as_text=True)) is None
    # Audited, without the token.
    event = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "invitation.link_copied"))
    assert event.subject_user_id == waiting.user_id and event.actor_user_id == account.admin.user_id
    assert link.rsplit("/", 1)[1] not in str(event.details)
    db.session.expire_all()
    assert db.session.get(Membership, waiting.id).invitation == "sent"
    # The queued e-mail carried the replaced link: it is not sent.
    report = outbox.deliver_all_due()
    assert (report.sent, report.failed) == (0, 1) and smtp.to("new@example.com") == []
    person = app.test_client()
    assert person.post(link, data={"password": PASSWORD, "confirm": PASSWORD}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Membership, waiting.id).invitation == "accepted"


def test_copying_after_the_mail_went_out_asks_first_then_the_mailed_link_stops(
    app, admin, account, smtp
):
    waiting = make_user(account, email="mailed@example.com", password=None)
    mailed = delivered_link(smtp, "mailed@example.com", "/invite/")
    asked = copy(admin, waiting.id)
    assert asked.status_code == 200
    dialog = asked.get_data(as_text=True)
    assert "<dialog" in dialog and "Copy a new invitation link?" in dialog
    assert "mailed@example.com" in dialog and 'name="confirmed" value="y"' in dialog
    assert LINK.search(dialog) is None
    assert app.test_client().get(mailed).status_code == 200  # nothing changed yet
    [link] = LINK.findall(copy(admin, waiting.id, confirmed="y").get_data(as_text=True))
    assert app.test_client().get(mailed).status_code == 410
    assert app.test_client().get(link).status_code == 200
    # Without JavaScript the question is a page, and the link shows in the answer page.
    page = admin.post(f"{USERS}{waiting.id}/copy-invitation-link").get_data(as_text=True)
    assert "Copy a new invitation link?" in page and LINK.search(page) is None


def test_an_expired_or_refused_invitation_can_be_copied_afresh(app, admin, account, smtp):
    from tests.services.test_invitation_states import expire

    smtp.refuse["typo@nowhere.example"] = "550 5.1.1 No such user"
    refused = make_user(account, email="typo@nowhere.example", password=None)
    outbox.deliver_all_due()
    expired = make_user(account, email="late@example.com", password=None)
    expire(expired)
    for membership in (refused, expired):
        [link] = LINK.findall(copy(admin, membership.id).get_data(as_text=True))
        assert app.test_client().get(link).status_code == 200
        db.session.expire_all()
        assert db.session.get(Membership, membership.id).invitation == "sent"


def test_no_link_for_people_with_a_password_known_elsewhere_or_in_another_account(
    app, admin, account
):
    joined = make_user(account, email="joined@example.com")
    elsewhere = make_account("Beta Org")
    known = make_user(elsewhere, email="known@example.com")
    awaiting = make_user(account, email="known@example.com", password=None)  # typed name
    both = make_user(account, email="both@example.com", password=None)
    make_user(elsewhere, email="both@example.com", password=None)
    stranger = make_user(elsewhere, email="stranger@example.com", password=None)
    for membership in (joined, awaiting, both):
        page = admin.get(f"{USERS}{membership.id}").get_data(as_text=True)
        assert "Copy invitation link" not in page
        response = copy(admin, membership.id, confirmed="y")
        assert response.status_code == 422 and LINK.search(response.get_data(as_text=True)) is None
    assert copy(admin, stranger.id, confirmed="y").status_code == 404
    assert copy(admin, known.id, confirmed="y").status_code == 404
    assert admin.post(f"{USERS}{both.id}/copy-invitation-link", csrf=False).status_code == 400
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
        AuditEvent.action == "invitation.link_copied")) == 0


def test_a_reset_link_is_never_readable_in_outgoing_mail(admin, account):
    member = make_user(account, email="member@example.com")
    auth.mail_reset_link(member.user, account)
    db.session.commit()
    message = db.session.scalar(sa.select(OutboxMessage).where(
        OutboxMessage.kind == "reset_password"))
    page = admin.get(f"/admin/outbox/{message.id}").get_data(as_text=True)
    assert "/reset-password/" not in page and mail.HIDDEN_LINK in page


def test_outgoing_mail_is_paged_searched_filtered_and_totalled(admin, account, smtp):
    smtp.refuse["bounce@nowhere.example"] = "550 5.1.1 No such user"
    make_user(account, name="Bounce", email="bounce@nowhere.example", password=None)
    outbox.deliver_all_due()
    for n in range(60):
        make_user(account, name=f"Person {n:02}", email=f"p{n:02}@example.com", password=None)
    make_user(make_account(), email="foreign@example.com", password=None)
    page = admin.get("/admin/outbox/").get_data(as_text=True)
    # 1 refused invitation, its notice to the admin (gathering more), 60 queued invitations.
    assert "62 e-mails: 61 queued, 0 sending, 0 sent, 1 failed" in page
    assert "1–50 of 62" in page and "p59@example.com" in page and "p09@example.com" not in page
    assert "foreign@example.com" not in page and LINK.search(page) is None
    second = admin.get("/admin/outbox/?page=2", headers=HX)
    body = second.get_data(as_text=True)
    assert "<html" not in body and "51–62 of 62" in body and "p09@example.com" in body
    assert second.headers["HX-Push-Url"] == "/admin/outbox/?page=2"
    found = admin.get("/admin/outbox/?q=P07%40EXAMPLE", headers=HX).get_data(as_text=True)
    assert "p07@example.com" in found and "p08@example.com" not in found
    assert "; 1 match" in found
    by_subject = admin.get("/admin/outbox/?q=REFUSED+by").get_data(as_text=True)
    assert "; 1 match" in by_subject and account.admin.user.email in by_subject
    failed = admin.get("/admin/outbox/?state=failed").get_data(as_text=True)
    assert "bounce@nowhere.example" in failed and "p00@example.com" not in failed
    nothing = admin.get("/admin/outbox/?q=%25&state=bogus&page=x").get_data(as_text=True)
    assert "No e-mail matches." in nothing
