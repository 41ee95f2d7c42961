"""Issue 11, finding 1: no admin ever sees a link that grants a credential to someone else.

The attack: X is an admin of Beta and a user of Acme. Acme's admin clicks Reset Password on X,
opens the e-mail in Outgoing mail, uses the link, signs in as X and chooses Beta. The link is
sealed (stored as the digest of a placeholder, rendered only at delivery), so the page shows
"link hidden" and only the mail X receives works.
"""
import re

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Membership
from portal.models import OutboxMessage
from portal.services import auth
from portal.services import csv_import
from portal.services import invitations
from portal.services import outbox
from portal.services import passwords
from portal.services.users import Selection
from tests.builders import PASSWORD
from tests.builders import age_invitations
from tests.builders import csv_bytes
from tests.builders import make_account
from tests.builders import make_user
from tests.mailbox import delivered_link

HIDDEN = "link hidden: only the recipient can use it"
TAKEN = "attacker chose this 9 long phrase"
SECRET_LINK = re.compile(r"/(?:reset-password|invite)/[\w-]{20,}")


def newest(kind: str, to: str) -> OutboxMessage:
    return db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == kind, OutboxMessage.to_addr == to)
        .order_by(OutboxMessage.id.desc())
    ).first()


def outbox_pages(client, message: OutboxMessage) -> str:
    """Everything an admin can read about the message: the list and its page."""
    listing = client.get("/admin/outbox/")
    page = client.get(f"/admin/outbox/{message.id}")
    assert listing.status_code == 200 and page.status_code == 200
    return listing.get_data(as_text=True) + page.get_data(as_text=True)


def test_an_admin_cannot_take_over_a_person_who_is_admin_elsewhere(app, account, smtp):
    acme = account
    beta = make_account("Beta Org")
    x = make_user(beta, email="x@example.com", role="admin")
    in_acme = make_user(acme, email="x@example.com")
    attacker = app.test_client()
    assert attacker.login(acme.admin.user.email).status_code == 302

    # 1. Acme's admin clicks Reset Password on X: allowed, X gets a mail.
    response = attacker.post(f"/admin/participants/users/{in_acme.id}/reset-password")
    assert response.status_code == 302, response.get_data(as_text=True)
    message = newest("reset_password", "x@example.com")
    assert message.account_id == acme.id

    # 2. ...opens it in Outgoing mail: the link is not in the page.
    page = outbox_pages(attacker, message)
    assert SECRET_LINK.search(page) is None, "the admin can read the reset link"
    assert HIDDEN in page

    # 3. ...tries what the database keeps as if it were the link: it is no link.
    db.session.refresh(message)
    stored = str(message.context) + str(message.body_text)
    assert SECRET_LINK.search(stored) is None
    seal = message.context["sealed_link"]["token"]
    assert attacker.get(f"/reset-password/{seal}").status_code == 410

    # 4. ...signs in as X with a password of their choosing and chooses Beta: refused.
    assert attacker.post("/logout").status_code == 302
    assert attacker.login("x@example.com", TAKEN).status_code != 302
    chose = attacker.post("/choose-account", data={"account": beta.id})
    assert chose.status_code == 302 and chose.location.startswith("/login")

    # X alone gets the working link, by mail; it sets X's password and opens Beta to X.
    link = delivered_link(smtp, "x@example.com", "/reset-password/")
    response = app.test_client().post(link, data={"password": TAKEN, "confirm": TAKEN})
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.refresh(x.user)
    assert passwords.verify_hash(x.user.password_hash, TAKEN)[0]
    person = app.test_client()
    assert person.login("x@example.com", TAKEN).status_code == 302
    assert person.post("/choose-account", data={"account": beta.id}).status_code == 302
    # After delivery the page still hides it, and the link works only once.
    assert SECRET_LINK.search(outbox_pages(attacker_as_admin(app, acme), message)) is None
    assert app.test_client().get(link).status_code == 410


def attacker_as_admin(app, account):
    client = app.test_client()
    assert client.login(account.admin.user.email).status_code == 302
    return client


def test_invitations_of_people_with_a_password_are_sealed_and_work_when_delivered(
    app, admin, account, smtp
):
    # Invited to Acme before having a password; then joined Beta and chose one there.
    waiting = make_user(account, email="late@example.com", password=None)
    make_user(make_account(), email="late@example.com")
    assert db.session.get(Membership, waiting.id).invite_state == "invited"
    age_invitations()
    response = admin.post(f"/admin/participants/users/{waiting.id}/resend-invite")
    assert response.status_code == 302, response.get_data(as_text=True)
    message = newest("invite", "late@example.com")
    page = outbox_pages(admin, message)
    assert SECRET_LINK.search(page) is None and HIDDEN in page
    assert SECRET_LINK.search(str(message.context)) is None

    link = delivered_link(smtp, "late@example.com", "/invite/")
    person = app.test_client()
    assert person.post(link).status_code == 422  # a person with a password gives it
    assert person.post(link, data={"password": PASSWORD}).status_code == 302
    assert db.session.get(Membership, waiting.id).invite_state == "active"


def copied_link(client, membership_id) -> str:
    """Copy invitation link on User Details: the one way an admin reads an invitation link."""
    response = client.post(f"/admin/participants/users/{membership_id}/copy-invitation-link",
                           data={"confirmed": "y"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return SECRET_LINK.search(response.get_data(as_text=True)).group(0)


def test_the_bulk_resend_seals_every_link(admin, account):
    """Issue 15: Outgoing mail showed a new person's link and hid a known one's, so an admin
    could tell them apart. Now every invitation is sealed and hidden alike."""
    fresh = make_user(account, email="fresh@example.com", password=None)
    known = make_user(account, email="known@example.com", password=None)
    passwords.store_password(db.session.get(Membership, known.id).user, PASSWORD)
    age_invitations()
    invitations.resend_invites(account.admin, Selection(ids=(fresh.id, known.id)))
    for address in ("fresh@example.com", "known@example.com"):
        message = newest("invite", address)
        page = outbox_pages(admin, message)
        assert SECRET_LINK.search(page) is None and HIDDEN in page
        assert SECRET_LINK.search(str(message.context)) is None  # sealed, not only hidden


def test_a_new_persons_link_is_copied_only_while_they_belong_to_no_other_account(
    admin, account
):
    """The intranet exception covers only someone with no password and no other account."""
    solo = make_user(account, email="solo@example.com", password=None)
    assert SECRET_LINK.search(outbox_pages(admin, newest("invite", "solo@example.com"))) is None
    assert "Copy invitation link" in admin.get(
        f"/admin/participants/users/{solo.id}").get_data(as_text=True)
    assert copied_link(admin, solo.id)
    # Beta invites the same person: a link handed over here could now open Beta.
    make_user(make_account(), email="solo@example.com", password=None)
    assert "Copy invitation link" not in admin.get(
        f"/admin/participants/users/{solo.id}").get_data(as_text=True)
    refused = admin.post(f"/admin/participants/users/{solo.id}/copy-invitation-link",
                         data={"confirmed": "y"})
    assert refused.status_code == 422 and SECRET_LINK.search(refused.get_data(as_text=True)) is None


def test_imported_invitations_follow_the_same_rule(admin, account):
    beta = make_account()
    make_user(beta, email="pending@example.com", password=None)
    result = csv_import.import_csv(account.admin, csv_bytes([
        ("New Person", "new@example.com", ""), ("Pending Elsewhere", "pending@example.com", ""),
    ]))
    assert result.imported == 2
    for address in ("new@example.com", "pending@example.com"):
        imported = db.session.scalar(sa.select(OutboxMessage).where(
            OutboxMessage.to_addr == address, OutboxMessage.account_id == account.id))
        page = outbox_pages(admin, imported)
        assert SECRET_LINK.search(page) is None and HIDDEN in page
        assert SECRET_LINK.search(str(imported.context)) is None  # sealed, not only hidden


def test_an_invitation_of_someone_in_another_account_is_stored_sealed(
    app, admin, account, smtp
):
    make_user(make_account(), email="twofold@example.com", password=None)
    make_user(account, email="twofold@example.com", password=None)
    single = newest("invite", "twofold@example.com")
    assert single.account_id == account.id
    assert SECRET_LINK.search(str(single.context) + str(single.body_text)) is None
    age_invitations()
    membership = db.session.scalar(sa.select(Membership).where(
        Membership.account_id == account.id, Membership.user_id == single.user_id))
    invitations.resend_invites(account.admin, Selection(ids=(membership.id,)))
    resent = newest("invite", "twofold@example.com")
    assert resent.id != single.id
    assert SECRET_LINK.search(str(resent.context)) is None
    assert HIDDEN in outbox_pages(admin, resent)
    link = delivered_link(smtp, "twofold@example.com", "/invite/")
    response = app.test_client().post(link, data={"password": TAKEN, "confirm": TAKEN})
    assert response.status_code == 302
    assert db.session.get(Membership, membership.id).invite_state == "active"


def test_a_replaced_sealed_link_is_not_sent_and_the_newer_one_works(app, account, smtp):
    member = make_user(account, email="twice@example.com")
    outbox.deliver_all_due()
    smtp.reset()
    auth.mail_reset_link(member.user, account)
    db.session.commit()
    first = newest("reset_password", "twice@example.com")
    auth.mail_reset_link(member.user, account)
    db.session.commit()
    report = outbox.deliver_all_due()
    assert (report.sent, report.failed) == (1, 1)
    db.session.refresh(first)
    assert first.state == "failed" and "replaced" in first.last_error
    [received] = smtp.to("twice@example.com")
    link = re.search(r"http://portal\.test(/reset-password/[\w-]+)", received.text).group(1)
    assert app.test_client().get(link).status_code == 200


def test_a_link_handed_out_before_another_account_invited_the_person_opens_only_its_own(
    app, admin, account
):
    """The intranet exception: Acme may copy a new person's link. If Beta invites the same
    person afterwards, whoever used Acme's link still cannot act in Beta: an invitation opens
    an account only once accepted through that account's own link."""
    invited = make_user(account, email="copied@example.com", password=None)
    link = copied_link(admin, invited.id)  # handed over on paper, say
    beta = make_account("Beta Org")
    make_user(beta, email="copied@example.com", role="admin", password=None)
    holder = app.test_client()
    assert holder.post(link, data={"password": TAKEN, "confirm": TAKEN}).status_code == 302
    response = holder.login("copied@example.com", TAKEN)
    assert response.status_code == 302 and "/choose-account" not in response.location
    chose = holder.post("/choose-account", data={"account": beta.id})
    assert chose.status_code == 422
    assert holder.get("/admin/participants/users/").status_code == 403  # a member of Acme only
