"""/api/v1 for device apps: sessions with bearer tokens, me, errors, CSRF exemption (T13)."""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Device
from portal.models import User
from portal.services import devices
from tests.builders import PASSWORD
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user


def body(email, **extra):
    return dict({"email": email, "password": PASSWORD, "device_id": "ABC-123",
                 "device_name": "Front desk", "kind": "ipad", "app_version": "4.2.1"}, **extra)


def api_sign_in(client, email, **extra):
    response = client.post("/api/v1/sessions", json=body(email, **extra), csrf=False)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_an_app_signs_in_reads_me_and_signs_out(client, account):
    member = make_user(account, name="Ana Berg")
    group = make_group(account, "Drivers", [member])
    make_taskstream(account, "Delivery round", [("Deliver", group.id)])
    make_taskstream(account, "Not mine", [("Other", None)])
    response = client.post("/api/v1/sessions", json=body(member.user.email), csrf=False)
    assert response.status_code == 201
    session = response.get_json()
    assert session["token_type"] == "Bearer"
    assert session["device"]["name"] == "Front desk — app 4.2.1"
    assert session["device"]["kind"] == "ipad"
    token = session["token"]
    stored = db.session.scalar(sa.select(Device).where(Device.user_id == member.user_id))
    assert stored.token_hash != token and stored.client_device_id == "ABC-123"
    me = client.get("/api/v1/me", headers=bearer(token)).get_json()
    assert (me["name"], me["email"]) == ("Ana Berg", member.user.email)
    assert me["accounts"] == [{"id": account.id, "name": account.name, "role": "member"}]
    assert [g["name"] for g in me["groups"]] == ["Drivers"]
    assert [(t["name"], [s["name"] for s in t["steps"]]) for t in me["taskstreams"]] == [
        ("Delivery round", ["Deliver"])]
    assert client.delete("/api/v1/sessions/current", headers=bearer(token)).status_code == 204
    gone = client.get("/api/v1/me", headers=bearer(token))
    assert gone.status_code == 401
    assert gone.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("case", ["unknown", "wrong password", "deleted"])
def test_failed_api_sign_ins_are_all_the_same_401(client, account, case):
    member = make_user(account)
    email = "nobody@example.com" if case == "unknown" else member.user.email
    if case == "deleted":
        from portal.models import utcnow

        member.deleted_at = utcnow()
        db.session.commit()
    password = "not the password" if case == "wrong password" else PASSWORD
    response = client.post("/api/v1/sessions", json=body(email, password=password), csrf=False)
    assert response.status_code == 401
    assert response.get_json() == {"error": {"code": "invalid_credentials",
                                              "message": "The e-mail or password is wrong."}}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_missing_or_mistyped_fields_are_422_with_each_field(client, account):
    response = client.post("/api/v1/sessions", json={"email": account.admin.user.email,
                                                     "password": 12345, "kind": "toaster"},
                           csrf=False)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request"
    assert set(error["fields"]) == {"password", "device_id", "device_name", "kind", "app_version"}
    not_object = client.post("/api/v1/sessions", json=["a list"], csrf=False)
    assert not_object.status_code == 400
    assert not_object.get_json()["error"]["code"] == "invalid_json"
    assert db.session.scalar(sa.select(sa.func.count(Device.id))) == 0


def test_non_json_bodies_are_415_and_the_cookie_alone_is_401(app, admin, account):
    """T13: the API is CSRF-exempt only because it never takes the session cookie."""
    for headers, data in [({"Content-Type": "text/plain"}, "{}"),
                          ({"Content-Type": "application/x-www-form-urlencoded"}, "email=x")]:
        response = admin.post("/api/v1/sessions", data=data, headers=headers, csrf=False)
        assert response.status_code == 415
        assert response.get_json()["error"]["code"] == "unsupported_media_type"
    # The admin's browser cookie is ignored by the API.
    assert admin.get("/api/v1/me").status_code == 401
    assert admin.delete("/api/v1/sessions/current", csrf=False).status_code == 401
    assert admin.get("/account").status_code == 200  # the web session itself is untouched


def test_malformed_and_revoked_tokens_are_401_json(client, account):
    member = make_user(account)
    for header in ["Bearer nonsense", "Bearer " + "x" * 500, "Basic abc", "Bearer"]:
        response = client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
    token = api_sign_in(client, member.user.email)
    device_id = db.session.scalar(sa.select(Device.id).where(Device.user_id == member.user_id))
    devices.revoke_device(account.admin, member.id, device_id)
    response = client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error"] == {
        "code": "session_ended", "message": f"{account.admin.user.name} logged this device out."}


def test_the_device_limit_applies_to_app_sign_ins_and_says_why(client, account):
    member = make_user(account)
    tokens = [api_sign_in(client, member.user.email, device_id=f"dev-{n}") for n in range(4)]
    oldest = client.get("/api/v1/me", headers=bearer(tokens[0]))
    assert oldest.status_code == 401
    assert "device limit" in oldest.get_json()["error"]["message"]
    assert all(client.get("/api/v1/me", headers=bearer(t)).status_code == 200 for t in tokens[1:])


def test_the_same_app_signing_in_again_replaces_its_session(client, account):
    member = make_user(account)
    others = [api_sign_in(client, member.user.email, device_id=f"dev-{n}") for n in range(2)]
    first = api_sign_in(client, member.user.email, device_id="tablet")
    again = api_sign_in(client, member.user.email, device_id="tablet")
    assert client.get("/api/v1/me", headers=bearer(first)).status_code == 401
    for token in others + [again]:
        assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200


@pytest.mark.config(LOGIN_THROTTLE_AFTER=4)
def test_web_and_api_failures_share_one_counter_per_person(app, client, account):
    """T37: the counter is per person and shared by every sign-in path."""
    member = make_user(account)
    for _ in range(2):
        client.post("/api/v1/sessions", json=body(member.user.email, password="bad guess 1"),
                    csrf=False)
        client.login(member.user.email, "bad guess 2")
    user = db.session.get(User, member.user_id)
    db.session.refresh(user)
    assert user.failed_logins == 4 and user.throttled_until is not None
    # Throttled: the right password fails the same way on both paths.
    assert client.post("/api/v1/sessions", json=body(member.user.email),
                       csrf=False).status_code == 401
    web = client.login(member.user.email)
    assert "e-mail or password is wrong" in web.get_data(as_text=True)


def test_an_app_sign_in_with_a_password_below_a_stricter_policy_is_refused(client, account):
    member = make_user(account)
    account.password_min_length = 40
    db.session.commit()
    response = client.post("/api/v1/sessions", json=body(member.user.email), csrf=False)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "password_change_required"
    assert db.session.get(User, member.user_id).must_change_password is True
    assert db.session.scalar(sa.select(sa.func.count(Device.id))) == 0


def test_unknown_api_addresses_and_methods_answer_json(client):
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    wrong = client.get("/api/v1/sessions")
    assert wrong.status_code == 405
    assert wrong.get_json()["error"]["code"] == "method_not_allowed"


def test_me_lists_every_account_of_a_person_with_their_groups_in_each(client, account):
    from tests.builders import make_account

    other = make_account(name="Second Org")
    member = make_user(account)
    there = make_user(other, email=member.user.email)
    make_group(other, "Reviewers", [there])
    me = client.get("/api/v1/me", headers=bearer(api_sign_in(client, member.user.email))).get_json()
    assert sorted(a["name"] for a in me["accounts"]) == sorted([account.name, "Second Org"])
    assert [(g["name"], g["account_id"]) for g in me["groups"]] == [("Reviewers", other.id)]
