"""Issue 15, item 1 on the pages: the invitation column and filter, the counts at the top of
Users with their one Resend Invite (asked first, through the one confirmation), User Details."""
import sqlalchemy as sa

from portal.extensions import db
from portal.models import OutboxMessage
from portal.services import invitations
from portal.services import outbox
from tests.builders import make_user
from tests.services.test_invitation_states import REFUSAL
from tests.services.test_invitation_states import expire

HX = {"HX-Request": "true"}
USERS = "/admin/participants/users/"


def invites_after(message_id) -> set[str]:
    return set(db.session.scalars(sa.select(OutboxMessage.to_addr).where(
        OutboxMessage.id > message_id, OutboxMessage.kind == "invite")))


def lapsed_world(account, smtp):
    smtp.refuse["bad@nowhere.example"] = REFUSAL
    invitations.add_person(account.admin, name="Bad Address", email="bad@nowhere.example")
    outbox.deliver_all_due()
    first = make_user(account, name="Old One", email="old1@example.com", password=None)
    second = make_user(account, name="Old Two", email="old2@example.com", password=None)
    make_user(account, name="Fresh Face", email="fresh@example.com", password=None)
    expire(first, second)
    return first, second


def test_the_users_header_counts_expired_and_refused_and_the_list_filters_by_invitation(
    admin, account, smtp
):
    lapsed_world(account, smtp)
    html = admin.get(USERS).get_data(as_text=True)
    assert "2 invitations expired</a>" in html and "1 refused</a>" in html
    assert 'href="/admin/participants/users/?invitation=expired"' in html
    assert 'href="/admin/participants/users/?invitation=refused"' in html
    assert 'form="resend-lapsed"' in html and ">Resend Invite</button>" in html
    assert '<span class="badge state-refused">refused</span>' in html and REFUSAL in html
    assert '<span class="badge state-queued">queued</span>' in html
    expired = admin.get(USERS + "?invitation=expired", headers=HX).get_data(as_text=True)
    assert "Old One" in expired and "Old Two" in expired
    assert "Fresh Face" not in expired and "Bad Address" not in expired
    assert "2 users match" in expired
    refused = admin.get(USERS + "?invitation=refused").get_data(as_text=True)
    assert "Bad Address" in refused and "Old One" not in refused
    # The selection carries the filter on to every bulk action.
    assert '<input type="hidden" name="invitation" value="refused">' in refused
    # Unknown values are dropped, never an error.
    assert admin.get(USERS + "?invitation=bogus").status_code == 200


def test_resend_invite_from_the_header_asks_first_then_resends_to_all_expired_or_refused(
    admin, account, smtp
):
    lapsed_world(account, smtp)
    before = db.session.scalar(sa.select(sa.func.max(OutboxMessage.id)))
    asked = admin.post(USERS + "resend-lapsed", data={"invitation": "expired"}, headers=HX)
    assert asked.status_code == 200
    dialog = asked.get_data(as_text=True)
    assert "<dialog" in dialog and "Resend 3 invitations?" in dialog
    assert "2 invitations expired, 1 refused" in dialog
    assert 'name="confirmed" value="y"' in dialog
    assert 'name="invitation" value="expired"' in dialog  # the list comes back as it was
    assert invites_after(before) == set()  # nothing until confirmed
    done = admin.post(USERS + "resend-lapsed", data={"confirmed": "y", "invitation": "expired"},
                      headers=HX)
    assert done.status_code == 200
    body = done.get_data(as_text=True)
    assert "Invite resent to 3 users." in body
    assert 'id="invitations" hx-swap-oob="true"' in body and "invitations expired" not in body
    assert invites_after(before) == {"bad@nowhere.example", "old1@example.com",
                                     "old2@example.com"}
    # Without JavaScript: the question as a page, then back to the list.
    assert "Resend" in admin.post(USERS + "resend-lapsed").get_data(as_text=True)
    plain = admin.post(USERS + "resend-lapsed", data={"confirmed": "y"})
    assert plain.status_code == 302 and plain.location.startswith(USERS)


def test_resend_lapsed_needs_the_csrf_token_and_an_admin(app, admin, account, smtp):
    lapsed_world(account, smtp)
    assert admin.post(USERS + "resend-lapsed", data={"confirmed": "y"},
                      csrf=False).status_code == 400
    member = make_user(account, email="member@example.com")
    client = app.test_client()
    assert client.login(member.user.email).status_code == 302
    assert client.post(USERS + "resend-lapsed", data={"confirmed": "y"}).status_code == 403


def test_user_details_say_where_the_invitation_stands(admin, account, smtp):
    old, _ = lapsed_world(account, smtp)
    html = admin.get(f"{USERS}{old.id}").get_data(as_text=True)
    assert '<span class="badge state-expired">expired</span>' in html
    assert "<dt>Invitation</dt><dd>expired " in html and "(queued, not sent yet)" in html
    bad = db.session.scalar(sa.select(OutboxMessage.membership_id).where(
        OutboxMessage.to_addr == "bad@nowhere.example"))
    html = admin.get(f"{USERS}{bad}").get_data(as_text=True)
    assert "state-refused" in html and REFUSAL in html
