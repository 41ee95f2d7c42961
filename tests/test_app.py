"""The factory, its config layers, the health check and the security baseline."""
import pytest

from portal import create_app


def test_config_layers_apply_in_order(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_RETENTION_DAYS", "7")
    monkeypatch.setenv("PORTAL_BASE_URL", "https://env.example")
    app = create_app({"BASE_URL": "https://test.example", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert app.config["RETENTION_DAYS"] == 7  # env, parsed as JSON
    assert app.config["BASE_URL"] == "https://test.example"  # test config wins
    assert app.config["ARGON2_MEMORY_COST"] == 19456  # default


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
