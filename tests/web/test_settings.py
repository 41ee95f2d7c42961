"""Admin → More → Settings through the pages."""
from portal.extensions import db
from tests.builders import make_user

FORM = {"password_min_length": "14", "invite_valid_hours": "48", "sender_name": "HQ"}


def test_settings_page_shows_the_policy_and_the_read_only_device_limit(admin, account):
    html = admin.get("/admin/settings/").get_data(as_text=True)
    assert 'name="password_min_length"' in html and 'value="12"' in html
    assert "NIST" in html and "blocklist" in html
    assert 'name="device_limit"' not in html
    assert f'flask accounts set "{account.name}" --device-limit N' in html
    # The seed's rule (issue 15, item 7): one more sign-in logs out the first device.
    assert "logs out the one signed in first" in html and "least recently" not in html
    assert "/admin/settings/" in admin.get("/admin/participants/users/").get_data(as_text=True)


def test_a_valid_submit_saves_and_redirects(admin, account):
    response = admin.post("/admin/settings/", data=dict(FORM, password_require_classes="y"))
    assert response.status_code == 302
    db.session.refresh(account)
    assert (account.password_min_length, account.password_require_classes,
            account.invite_valid_hours, account.sender_name) == (14, True, 48, "HQ")


def test_an_invalid_htmx_submit_is_422_with_the_form_and_changes_nothing(admin, account):
    response = admin.post("/admin/settings/", data=dict(FORM, password_min_length="200"),
                          headers={"HX-Request": "true"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert "The minimum length must be a whole number from 8 to 128." in html
    assert 'value="HQ"' in html  # what was typed is kept
    db.session.refresh(account)
    assert account.password_min_length == 12
    not_a_number = admin.post("/admin/settings/", data=dict(FORM, invite_valid_hours="soon"),
                              headers={"HX-Request": "true"})
    assert not_a_number.status_code == 422


def test_only_admins_reach_settings(app, account, client):
    assert client.get("/admin/settings/").status_code == 302
    member = app.test_client()
    member.login(make_user(account).user.email)
    assert member.get("/admin/settings/").status_code == 403
    assert member.post("/admin/settings/", data=FORM).status_code == 403
    db.session.refresh(account)
    assert account.password_min_length == 12
