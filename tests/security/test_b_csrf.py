"""B. CSRF, including htmx requests (SECURITY-CHECKLIST T09–T13).

tests/web/test_csrf.py walks every unsafe route without a token, with another session's token
and as htmx without the header; here: an expired token on every route, GETs that change
nothing, cross-origin posts, login CSRF and fixation, and the API's exemption.
"""
import time

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Device
from tests import builders
from tests.conftest import TEST_CONFIG
from tests.security.conftest import USERS
from tests.security.conftest import live_devices
from tests.security.conftest import signed_in
from tests.security.conftest import sample_path
from tests.security.conftest import snapshot

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _rules():
    app = create_app(dict(TEST_CONFIG, DATABASE_URL="sqlite://"))
    return list(app.url_map.iter_rules())


RULES = _rules()


def unsafe_routes():
    for rule in RULES:
        if rule.endpoint.startswith(("api.", "scim.")):
            continue  # bearer tokens only (T13; SCIM: tests/scim/test_tokens_and_errors.py)
        for method in sorted(rule.methods & UNSAFE):
            path = sample_path(rule)
            yield method, path


def test_t09_a_token_older_than_the_time_limit_is_refused_on_every_state_changing_route(
        admin, monkeypatch):
    routes = list(unsafe_routes())
    assert len(routes) > 25  # a new route is covered the moment it exists
    token = admin.csrf_token()
    limit = admin.application.config.get("WTF_CSRF_TIME_LIMIT") or 3600
    assert limit <= 3600
    before = snapshot()
    events = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))
    later = time.time() + limit + 1
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    for method, path in routes:
        response = admin.open(path, method=method, headers={"X-CSRFToken": token}, csrf=False)
        assert response.status_code == 400, (method, path, response.status_code)
    assert snapshot() == before
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id))) == events


def test_t10_no_state_changes_on_get_and_logout_is_a_post(admin, account):
    member = builders.make_user(account, password=None)
    before = snapshot()
    for rule in RULES:
        if "GET" in rule.methods or rule.endpoint == "static":
            continue
        path = sample_path(rule)
        if rule.endpoint.startswith(("api.", "scim.")):
            assert admin.get(path).status_code in (401, 405), path
        else:
            assert admin.get(path).status_code == 405, path
    for path in (f"{USERS}/{member.id}/resend-invite", f"{USERS}/bulk/delete",
                 f"{USERS}/{member.id}/reset-password"):
        assert admin.get(path, query_string={"ids": member.id, "confirmed": "y"}).status_code == 405
    confirm = admin.get("/logout")
    assert confirm.status_code == 200 and "<form" in confirm.get_data(as_text=True)
    assert snapshot() == before
    assert admin.get(f"{USERS}/").status_code == 200  # still signed in
    assert admin.post("/logout").status_code == 302
    assert admin.get(f"{USERS}/").status_code == 302


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "http://localhost.evil.example"},
], ids=["sec-fetch-site", "origin", "look-alike-origin"])
def test_t11_cross_origin_posts_are_refused_even_with_a_valid_token(admin, account, headers):
    member = builders.make_user(account)
    before = snapshot()
    response = admin.post(f"{USERS}/{member.id}/role", data={"role": "admin"}, headers=headers)
    assert response.status_code in (400, 403)
    assert snapshot() == before


@pytest.mark.config(HTTPS=True)
def test_t11_over_https_a_post_without_referer_is_refused(app, account):
    client = app.test_client()
    base = {"base_url": "https://localhost"}
    token = client.get("/login", **base)
    assert token.status_code == 200
    response = client.post("/login", data={"email": account.admin.user.email,
                                           "password": builders.PASSWORD}, **base)
    assert response.status_code == 400
    ok = client.post("/login", data={"email": account.admin.user.email,
                                     "password": builders.PASSWORD},
                     headers={"Referer": "https://localhost/login"}, **base)
    assert ok.status_code == 302


def test_t12_login_needs_a_token_and_issues_a_new_session(app, account):
    client = app.test_client()
    refused = client.post("/login", data={"email": account.admin.user.email,
                                          "password": builders.PASSWORD}, csrf=False)
    assert refused.status_code == 400
    assert live_devices(account.admin.user_id) == []
    client.get("/login")
    before = client.get_cookie("session").value
    assert client.login(account.admin.user.email).status_code == 302
    after = client.get_cookie("session").value
    assert after != before
    # A fixed pre-login cookie planted in another browser is not signed in.
    planted = app.test_client()
    planted.set_cookie("session", before)
    assert planted.get(f"{USERS}/").status_code == 302


def test_t13_the_api_is_csrf_exempt_only_for_bearer_tokens(app, admin, account):
    member = builders.make_user(account)
    # The browser's cookie alone is no credential for the API.
    assert admin.get("/api/v1/me").status_code == 401
    assert admin.delete("/api/v1/sessions/current", csrf=False).status_code == 401
    body = ('{"email": "%s", "password": "%s", "device_id": "d", "device_name": "P", '
            '"kind": "iphone", "app_version": "1"}' % (member.user.email, builders.PASSWORD))
    for content_type in ("text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x"):
        response = app.test_client().post("/api/v1/sessions", data=body,
                                          headers={"Content-Type": content_type})
        assert response.status_code == 415, content_type
    assert db.session.scalar(sa.select(sa.func.count(Device.id)).where(
        Device.user_id == member.user_id)) == 0
    signed = app.test_client().post("/api/v1/sessions", data=body,
                                    headers={"Content-Type": "application/json"})
    assert signed.status_code == 201
    token = signed.json["token"]
    assert app.test_client().get("/api/v1/me", headers={
        "Authorization": f"Bearer {token}"}).status_code == 200
    # A web session's cookie value is no bearer token, nor the reverse.
    web = signed_in(app, member.user.email)
    assert web.get("/api/v1/me", headers={"Authorization": "Bearer " + "x" * 43}).status_code == 401
