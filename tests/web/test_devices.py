"""Devices in User Details and the device limit, through the pages."""
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Device
from tests.builders import make_account
from tests.builders import make_user


def signed_in(app, email):
    client = app.test_client()
    assert client.login(email).status_code == 302
    return client


def device_ids(user_id):
    return list(db.session.scalars(
        sa.select(Device.id).where(Device.user_id == user_id, Device.revoked_at.is_(None))
    ))


def test_the_fourth_web_sign_in_logs_out_the_oldest_which_is_told_why(app, account):
    member = make_user(account)
    clients = [signed_in(app, member.user.email) for _ in range(4)]
    response = clients[0].get("/account")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    page = clients[0].get(response.headers["Location"]).get_data(as_text=True)
    assert "device limit was reached" in page
    for client in clients[1:]:
        assert client.get("/account").status_code == 200


def test_user_details_devices_section_lists_and_logs_out_one_device(app, admin, account):
    member = make_user(account)
    phone, laptop = signed_in(app, member.user.email), signed_in(app, member.user.email)
    url = f"/admin/participants/users/{member.id}/devices"
    page = admin.get(url)
    assert page.status_code == 200
    assert page.get_data(as_text=True).count(">Log out</button>") == 2
    phone_device = device_ids(member.user_id)[0]
    response = admin.post(f"{url}/{phone_device}/logout", data={"confirmed": "y"},
                          headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and 'id="flashes"' in html
    assert f"Logged out by {account.admin.user.name}" in html
    assert phone.get("/account").status_code == 302
    assert laptop.get("/account").status_code == 200
    follow = phone.get("/login").get_data(as_text=True)
    assert f"{account.admin.user.name} logged this device out." in follow


def test_logging_out_without_htmx_redirects_back_to_the_page_it_came_from(app, admin, account):
    member = make_user(account)
    signed_in(app, member.user.email)
    device_id = device_ids(member.user_id)[0]
    response = admin.post(f"/admin/participants/users/{member.id}/devices/{device_id}/logout",
                          data={"next": f"/admin/participants/users/{member.id}", "confirmed": "y"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin/participants/users/{member.id}"
    assert device_ids(member.user_id) == []


def test_devices_of_another_account_are_404_and_untouched(app, admin):
    other = make_account()
    stranger = make_user(other)
    signed_in(app, stranger.user.email)
    device_id = device_ids(stranger.user_id)[0]
    url = f"/admin/participants/users/{stranger.id}/devices"
    assert admin.get(url).status_code == 404
    assert admin.post(f"{url}/{device_id}/logout").status_code == 404
    assert admin.get("/admin/participants/users/999999/devices").status_code == 404
    assert device_ids(stranger.user_id) == [device_id]


def test_logging_out_a_device_needs_post_with_csrf_and_an_admin(app, admin, account):
    member = make_user(account)
    signed_in(app, member.user.email)
    device_id = device_ids(member.user_id)[0]
    url = f"/admin/participants/users/{member.id}/devices/{device_id}/logout"
    assert admin.get(url).status_code == 405
    assert admin.post(url, csrf=False).status_code == 400
    other_member = signed_in(app, make_user(account).user.email)
    assert other_member.post(url).status_code == 403
    assert device_ids(member.user_id) == [device_id]


def test_user_details_includes_the_devices_section(app, admin, account):
    member = make_user(account)
    signed_in(app, member.user.email)
    html = admin.get(f"/admin/participants/users/{member.id}").get_data(as_text=True)
    assert 'id="devices"' in html
    assert "Chrome" in html or "Web browser" in html
    assert f"/admin/participants/users/{member.id}/devices/" in html
