"""The factory, its config layers, the health check and the security baseline."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from portal import create_app
from portal.services import outbox


def test_config_layers_apply_in_order(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_RETENTION_DAYS", "7")
    monkeypatch.setenv("PORTAL_BASE_URL", "https://env.example")
    app = create_app({"BASE_URL": "https://test.example", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert app.config["RETENTION_DAYS"] == 7  # env, parsed as JSON
    assert app.config["BASE_URL"] == "https://test.example"  # test config wins
    assert app.config["ARGON2_MEMORY_COST"] == 19456  # default


# In a fresh interpreter: build the app, then answer SCIM requests (one without a token).
FRESH_PROCESS = """
import json, sys
from portal import create_app
app = create_app({"SECRET_KEY": "k", "DATABASE_URL": sys.argv[1]})
heavy = ("scim2_models", "pydantic")
at_start = [name for name in heavy if name in sys.modules]
client = app.test_client()
refused = client.get("/scim/v2/ServiceProviderConfig")
unknown = client.get("/scim/v2/Nothing", headers={"Authorization": "Bearer nothing"})
print(json.dumps([at_start, refused.status_code, refused.json, unknown.status_code,
                  unknown.json, [name for name in heavy if name in sys.modules]]))
"""


def test_the_app_starts_without_the_scim_libraries_and_loads_them_for_scim(tmp_path):
    """Every gunicorn worker, `flask` command and worker process builds the app: scim2-models
    and pydantic (~0.6 s CPU of 1.7) wait for the first SCIM request, which is answered."""
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, f"sqlite:///{tmp_path}/a.db"],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    at_start, status, body, unknown, unknown_body, after = json.loads(
        done.stdout.splitlines()[-1])
    assert at_start == []
    error = ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert status == 401 and body["detail"] == "A valid bearer token is required."
    assert body["schemas"] == error
    assert unknown == 404 and unknown_body["schemas"] == error  # the app's handler, lazily too
    assert after == ["scim2_models", "pydantic"]


def test_healthz_checks_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_csrf_is_on_and_a_post_without_token_changes_nothing(client, account, smtp):
    response = client.post("/forgot-password", data={"email": account.admin.user.email}, csrf=False)
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True)


def test_pages_carry_security_headers(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert 'hx-headers=\'{"X-CSRFToken": "' in response.get_data(as_text=True)


@pytest.mark.config(HTTPS=True)
def test_https_turns_on_hsts_and_secure_host_cookie(client, account):
    response = client.login(account.admin.user.email)
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_reset_and_invite_pages_send_no_referrer(client):
    assert client.get("/reset-password/nope").headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/invite/nope").headers["Referrer-Policy"] == "no-referrer"


def test_unknown_page_is_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "There is nothing here" in response.get_data(as_text=True)


def test_cross_site_posts_are_refused_even_with_a_token(admin):
    cross = admin.post("/logout", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    foreign = admin.post("/logout", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    same = admin.post("/logout", headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 302


@pytest.mark.config(WTF_CSRF_ENABLED=False)  # the token is bound to the real host's cookie
def test_links_in_mail_ignore_the_host_header(client, account, smtp):
    response = client.post(
        "/forgot-password",
        data={"email": account.admin.user.email},
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )
    assert response.status_code == 302
    outbox.deliver_all_due()
    body = smtp.to(account.admin.user.email)[-1].text
    assert "http://portal.test/reset-password/" in body and "evil.example" not in body
