"""Sign-in pages through the test client: pages, redirects, refusals, sessions."""
import re

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db
from portal.models import Device
from portal.models import OutboxMessage
from portal.services import auth
from portal.services import mail
from tests.builders import PASSWORD
from tests.builders import make_account
from tests.builders import make_user
from tests.mailbox import delivered_link

NEW_PASSWORD = "purple elephant juggling oranges"


def test_login_page_prefills_the_login_hint(client):
    html = client.get("/login?login_hint=ana%40example.com").get_data(as_text=True)
    assert 'value="ana@example.com"' in html


def test_admin_signs_in_and_lands_on_users(client, account):
    response = client.login(account.admin.user.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/participants/users/"
    assert client.get("/admin/participants/users/").status_code == 200


def test_a_wrong_password_and_an_unknown_email_look_the_same(client, account):
    email = account.admin.user.email
    wrong = client.login(email, "not the password at all")
    unknown = client.login("nobody@example.com", "not the password at all")
    assert wrong.status_code == unknown.status_code == 200

    def strip(response, typed):
        # Only what the person typed (echoed back) and the CSRF token may differ.
        html = response.get_data(as_text=True).replace(typed, "TYPED")
        return re.sub(r'value="[^"]*"|"X-CSRFToken": "[^"]*"', "", html)

    assert strip(wrong, email) == strip(unknown, "nobody@example.com")
    assert "The e-mail or password is wrong." in wrong.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(client, account):
    response = client.login(account.admin.user.email, csrf=False)
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count(Device.id))) == 0


def test_signing_in_issues_a_new_session_cookie(client, account):
    client.get("/login")
    before = client.get_cookie("session").value
    client.login(account.admin.user.email)
    assert client.get_cookie("session").value != before


def test_next_only_accepts_local_paths(client, account):
    response = client.post("/login?next=https://evil.example/", data={
        "email": account.admin.user.email, "password": PASSWORD})
    assert response.headers["Location"] == "/admin/participants/users/"
    response = client.post("/login?next=/admin/outbox/", data={
        "email": account.admin.user.email, "password": PASSWORD})
    assert response.headers["Location"] == "/admin/outbox/"


def test_admin_pages_send_anonymous_people_to_sign_in(client):
    response = client.get("/admin/participants/users/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    htmx = client.get("/admin/participants/users/", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login")


def test_members_get_403_on_admin_pages(client, account):
    member = make_user(account)
    client.login(member.user.email)
    assert client.get("/admin/participants/users/").status_code == 403


def test_logout_is_a_post_and_ends_the_device(admin):
    assert admin.get("/logout").status_code == 200  # a confirmation page, nothing changes
    assert admin.get("/admin/participants/users/").status_code == 200
    response = admin.post("/logout")
    assert response.status_code == 302
    assert admin.get("/admin/participants/users/").status_code == 302
    device = db.session.scalar(sa.select(Device))
    assert device.revoked_reason == "logout"


def test_a_copied_cookie_dies_with_its_device_in_another_app_instance(app, admin):
    cookie = admin.get_cookie("session").value
    other_app = create_app({key: app.config[key] for key in (
        "TESTING", "SECRET_KEY", "DATABASE_URL", "MAIL_SERVER", "MAIL_PORT",
        "ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM")})
    other_app.test_client_class = type(admin)
    other = other_app.test_client()
    other.set_cookie("session", cookie)
    assert other.get("/admin/participants/users/").status_code == 200  # any process serves it
    other.post("/logout")  # ended through the second instance
    response = admin.get("/admin/participants/users/")  # the first instance notices
    assert response.status_code == 302
    with other_app.app_context():
        db.engine.dispose()


def test_a_device_ended_by_the_limit_is_told_why(app, client, account):
    account.device_limit = 1
    db.session.commit()
    client.login(account.admin.user.email)
    auth.sign_in(account.admin.user, auth.Client())  # another device takes the only place
    response = client.get("/admin/participants/users/", follow_redirects=True)
    assert "device limit was reached" in response.get_data(as_text=True)


def test_forgot_password_answers_the_same_for_known_and_unknown_emails(client, account, smtp):
    known = client.post("/forgot-password", data={"email": account.admin.user.email},
                        follow_redirects=True)
    unknown = client.post("/forgot-password", data={"email": "nobody@example.com"},
                          follow_redirects=True)
    strip = lambda r: re.sub(r'value="[^"]*"|"X-CSRFToken": "[^"]*"', "", r.get_data(as_text=True))
    assert strip(known) == strip(unknown)
    assert "a link to reset the password is on its way" in strip(known)
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 1


def test_reset_password_page_flow(client, account, smtp):
    client.post("/forgot-password", data={"email": account.admin.user.email})
    path = delivered_link(smtp, account.admin.user.email, "/reset-password/")
    page = client.get(path)
    assert page.status_code == 200 and "At least 12 characters" in page.get_data(as_text=True)
    weak = client.post(path, data={"password": "password1234", "confirm": "password1234"})
    assert weak.status_code == 422
    done = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and "login_hint=" in done.headers["Location"]
    reused = client.get(path)
    assert reused.status_code == 410
    assert "already been used" in reused.get_data(as_text=True)
    assert client.login(account.admin.user.email, NEW_PASSWORD).status_code == 302


def test_a_made_up_link_gets_a_clear_page(client):
    response = client.get("/reset-password/made-up-token")
    assert response.status_code == 410
    assert "Request a new password link" in response.get_data(as_text=True)


def test_invitation_acceptance_then_sign_in(client, account, smtp):
    invited = make_user(account, email="new.person@example.com", password=None)
    path = delivered_link(smtp, "new.person@example.com", "/invite/")
    page = client.get(path).get_data(as_text=True)
    assert "Join " + account.name in page and "new.person@example.com" in page
    response = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert client.login(invited.user.email, NEW_PASSWORD).status_code == 302


def test_someone_in_several_accounts_chooses_where_to_act(client, account):
    other = make_account("Second Org")
    make_user(other, email=account.admin.user.email, role="admin")
    response = client.login(account.admin.user.email)
    assert response.headers["Location"].startswith("/choose-account")
    page = client.get("/choose-account").get_data(as_text=True)
    assert "Second Org" in page and account.name in page
    assert client.get("/admin/participants/users/").status_code == 302  # no account chosen yet
    client.post("/choose-account", data={"account": other.id})
    html = client.get("/admin/participants/users/").get_data(as_text=True)
    assert "Second Org" in html


def test_choosing_an_account_you_are_not_in_is_refused(client, account):
    other = make_account("Foreign Org")
    client.login(account.admin.user.email)
    response = client.post("/choose-account", data={"account": other.id})
    assert response.status_code == 422
    assert "Foreign Org" not in response.get_data(as_text=True)


def test_admins_read_their_accounts_outgoing_mail_only(admin, account):
    make_user(account, email="invitee@example.com", password=None)
    other = make_account()
    make_user(other, email="elsewhere@example.com", password=None)
    page = admin.get("/admin/outbox/").get_data(as_text=True)
    assert "invitee@example.com" in page and "elsewhere@example.com" not in page
    foreign = db.session.scalar(sa.select(OutboxMessage.id).where(
        OutboxMessage.to_addr == "elsewhere@example.com"))
    assert admin.get(f"/admin/outbox/{foreign}").status_code == 404
    own = db.session.scalar(sa.select(OutboxMessage.id).where(
        OutboxMessage.to_addr == "invitee@example.com"))
    # Every invitation link is hidden (issue 15): Copy invitation link is the one way.
    page = admin.get(f"/admin/outbox/{own}").get_data(as_text=True)
    assert "/invite/" not in page and mail.HIDDEN_LINK in page


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_the_login_form_is_rate_limited_per_address(client, account):
    codes = {client.login("nobody@example.com", "whatever password").status_code for _ in range(31)}
    assert 429 in codes
