"""/account: own profile, password change, own devices; the forced change after a stricter policy."""
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Device
from portal.models import OutboxMessage
from portal.models import User
from portal.services import passwords
from tests.builders import PASSWORD
from tests.builders import accepted
from tests.builders import make_account
from tests.builders import make_user

NEW_PASSWORD = "a much longer passphrase for tests"


def signed_in(app, email, password=PASSWORD):
    client = app.test_client()
    assert client.login(email, password).status_code == 302
    return client


def test_account_page_shows_profile_devices_and_the_password_link(app, account):
    member = make_user(account, name="Ada Lovelace")
    client = signed_in(app, member.user.email)
    html = client.get("/account").get_data(as_text=True)
    assert 'value="Ada Lovelace"' in html
    assert "this device" in html
    assert "/account/password" in html


def test_anonymous_people_are_sent_to_sign_in(client):
    response = client.get("/account")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_profile_saves_name_and_phone_and_refuses_a_bad_phone(app, account):
    member = make_user(account)
    client = signed_in(app, member.user.email)
    bad = client.post("/account/profile", data={"name": "Ada", "phone": "12"},
                      headers={"HX-Request": "true"})
    assert bad.status_code == 422
    assert "phone number" in bad.get_data(as_text=True)
    ok = client.post("/account/profile", data={"name": "Ada  King", "phone": "+44 20 7946 0958"},
                     headers={"HX-Request": "true"})
    assert ok.status_code == 200
    assert "Your profile is saved." in ok.get_data(as_text=True)
    user = db.session.get(User, member.user_id)
    assert (user.name, user.phone) == ("Ada King", "+442079460958")


def test_password_change_needs_the_current_one_and_shows_each_policy_reason(app, account):
    member = make_user(account, name="Grace Hopper")
    client = signed_in(app, member.user.email)
    page = client.get("/account/password").get_data(as_text=True)
    assert "At least 12 characters" in page
    wrong = client.post("/account/password", data={
        "current_password": "not it at all", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert wrong.status_code == 422
    assert "The current password is wrong." in wrong.get_data(as_text=True)
    for new, reason in [
        ("short pw", "Use at least 12 characters."),
        ("grace hopper rules 2024", "name, your e-mail"),
        ("password1234", "Choose a less common password."),
    ]:
        response = client.post("/account/password", data={
            "current_password": PASSWORD, "password": new, "confirm": new})
        assert response.status_code == 422, new
        assert reason in response.get_data(as_text=True), new
    db.session.expire_all()
    assert passwords.verify(db.session.get(User, member.user_id), PASSWORD)


def test_password_change_logs_out_every_other_device_and_mails_the_person(app, account):
    member = make_user(account)
    other = signed_in(app, member.user.email)
    client = signed_in(app, member.user.email)
    response = client.post("/account/password", data={
        "current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert client.get("/account").status_code == 200
    assert other.get("/account").status_code == 302
    assert "password was changed" in other.get("/login").get_data(as_text=True)
    mail = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.kind == "password_changed"))
    assert mail.to_addr == member.user.email


def test_a_person_logs_out_another_own_device_from_account(app, account):
    member = make_user(account)
    other = signed_in(app, member.user.email)
    client = signed_in(app, member.user.email)
    other_id = db.session.scalar(sa.select(sa.func.min(Device.id)).where(
        Device.user_id == member.user_id))
    response = client.post(f"/account/devices/{other_id}/logout", data={"confirmed": "y"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Logged out" in response.get_data(as_text=True)
    assert other.get("/account").status_code == 302
    everywhere = signed_in(app, member.user.email)
    assert client.post("/account/devices/logout-others").status_code == 302
    assert everywhere.get("/account").status_code == 302
    assert client.get("/account").status_code == 200


def test_a_stricter_policy_makes_people_change_their_password_at_next_sign_in(app, account):
    member = make_user(account)  # PASSWORD has 28 characters
    account.password_min_length = 40
    db.session.commit()
    client = app.test_client()
    response = client.login(member.user.email)
    assert response.headers["Location"].startswith("/account/password")
    # Nothing else is reachable until the password is changed.
    assert client.get("/account").headers["Location"] == "/account/password"
    page = client.get("/account/password").get_data(as_text=True)
    assert "no longer fits" in page and "At least 40 characters" in page
    longer = "an even longer passphrase that fits forty characters"
    done = client.post("/account/password", data={
        "current_password": PASSWORD, "password": longer, "confirm": longer})
    assert done.status_code == 302
    assert client.get("/account").status_code == 200
    assert db.session.get(User, member.user_id).must_change_password is False


def test_the_strictest_policy_of_a_person_in_two_accounts_applies(app, account):
    strict = make_account(password_min_length=30)
    member = make_user(account)
    from portal.services import invitations

    accepted(invitations.add_person(strict.admin, name=member.user.name, email=member.user.email))
    client = signed_in(app, member.user.email)
    assert client.get("/choose-account").headers["Location"] == "/account/password"
    # PASSWORD is 28 characters: it no longer fits, so the change comes first.
    assert db.session.get(User, member.user_id).must_change_password is True
    fits_the_other = "purple mountain river stone"  # 27 characters: enough there, not here
    response = client.post("/account/password", data={
        "current_password": PASSWORD, "password": fits_the_other, "confirm": fits_the_other})
    assert response.status_code == 422
    assert "Use at least 30 characters." in response.get_data(as_text=True)
