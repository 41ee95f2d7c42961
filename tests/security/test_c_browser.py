"""C. XSS and browser hardening (SECURITY-CHECKLIST T14, T15).

Every place a name shows: the users list (page and rows), User Details and its edit form,
groups (list, page, picker, Add to Group), taskstreams and steps, the account's name, flash
messages, the CSV import preview, e-mails (text and HTML). The headless-browser half of T14
(no dialog, no unexpected request) is tests/browser/; here every byte is checked.
"""
import io
import json
import re

import pytest

from tests import builders
from tests.builders import csv_bytes
from tests.security.conftest import GROUPS
from tests.security.conftest import HX
from tests.security.conftest import TASKSTREAMS
from tests.security.conftest import USERS
from tests.security.conftest import signed_in

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
HTMX = '<div hx-get="/admin/participants/users/bulk/delete" hx-trigger="load">'
TEMPLATE = "{{7*7}}"
PAYLOAD = SCRIPT + IMG + TEMPLATE + HTMX  # 125 characters: fits every name field
RAW = (SCRIPT, "<img src=x", "<div hx-get", 'hx-trigger="load"')


def assert_inert(html: str, where: str) -> None:
    for raw in RAW:
        assert raw not in html, (where, raw)
    assert 'href="javascript:' not in html.lower(), where
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, where
    assert TEMPLATE in html, where  # a template expression stays literal


def test_t14_markup_in_every_name_stays_text_in_pages_fragments_flashes_and_mail(app, smtp, runner):
    account = builders.make_account(PAYLOAD[:120])
    admin = signed_in(app, account.admin.user.email)
    new = admin.post(f"{USERS}/new", headers=HX, data={
        "name": PAYLOAD, "email": "victim@example.com", "role": "member"})
    assert new.status_code == 200, new.get_data(as_text=True)[:500]
    assert_inert(new.get_data(as_text=True), "New User answer and its flash")
    member = builders.make_user(account, name=PAYLOAD, email="member@example.com")
    group = admin.post(f"{GROUPS}/new", headers=HX, data={"name": PAYLOAD[:120],
                                                          "member_ids": member.id})
    assert group.status_code == 200, group.get_data(as_text=True)[:500]
    assert_inert(group.get_data(as_text=True), "New Group answer")
    group_id = builders.make_group(account, "Plain group", [member]).id
    created = admin.post(f"{TASKSTREAMS}/", data={"name": PAYLOAD[:120]})
    assert created.status_code == 302
    stream = created.headers["Location"]
    admin.post(f"{stream}/steps", data={"name": PAYLOAD[:120], "group_id": group_id})
    pages = {
        "users list": (f"{USERS}/", {}),
        "users rows": (f"{USERS}/?q=alert", HX),
        "user details": (f"{USERS}/{member.id}", {}),
        "edit form": (f"{USERS}/{member.id}/edit", HX),
        "groups list": (f"{GROUPS}/", {}),
        "groups rows": (f"{GROUPS}/?q=alert", HX),
        "group picker": (f"{GROUPS}/new?q=alert", HX),
        "group page": (f"{GROUPS}/{group_id}?q=alert", {}),
        "add to group": (f"{GROUPS}/add-to-group?ids={member.id}", HX),
        "taskstreams": (f"{TASKSTREAMS}/", {}),
        "taskstream": (stream, {}),
        "account page": ("/account", {}),
        "outgoing mail": ("/admin/outbox/", {}),
    }
    for where, (url, headers) in pages.items():
        response = admin.get(url, headers=headers)
        assert response.status_code == 200, (where, response.status_code)
        assert_inert(response.get_data(as_text=True), where)
    upload = admin.post(f"{USERS}/import", data={"file": (io.BytesIO(csv_bytes(
        [(PAYLOAD, "csv@example.com", PAYLOAD[:120])])), PAYLOAD[:60] + ".csv")},
        content_type="multipart/form-data")
    assert upload.status_code == 302
    assert_inert(admin.get(upload.headers["Location"]).get_data(as_text=True), "import preview")
    result = runner.invoke(args=["outbox", "deliver"])
    assert result.exit_code == 0, result.output
    (mail,) = smtp.to("victim@example.com")
    html_part = mail.message.get_body(preferencelist=("html",))
    if html_part is not None:
        assert_inert(html_part.get_content(), "invitation e-mail (HTML)")
    assert "\n" not in mail.subject


def test_t14_json_and_csv_carry_names_as_data(app, account):
    member = builders.make_user(account, name=PAYLOAD)
    token = app.test_client().post("/api/v1/sessions", json={
        "email": member.user.email, "password": builders.PASSWORD, "device_id": "d",
        "device_name": PAYLOAD[:100], "kind": "iphone", "app_version": "1"}).json["token"]
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.mimetype == "application/json"
    assert json.loads(me.get_data(as_text=True))["name"] == PAYLOAD


PAGES = ("/login", "/forgot-password", "/invite/nope", "/reset-password/nope",
         f"{USERS}/", f"{USERS}/new", f"{GROUPS}/", f"{TASKSTREAMS}/", "/admin/settings/",
         "/account", "/admin/outbox/", f"{USERS}/deleted", f"{USERS}/import")


@pytest.mark.config(HTTPS=True)
def test_t15_every_page_and_fragment_carries_the_security_headers_over_https(app, account):
    client = app.test_client()
    https = {"base_url": "https://localhost"}
    login = client.get("/login", **https)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login.get_data(as_text=True))
    signed = client.post("/login", data={"email": account.admin.user.email,
                                         "password": builders.PASSWORD,
                                         "csrf_token": token.group(1)},
                         headers={"Referer": "https://localhost/login"}, csrf=False, **https)
    assert signed.status_code == 302
    cookie = signed.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=") and "; Path=/" in cookie
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Domain=" not in cookie and "Expires=" not in cookie  # ends with the browser
    assert not any(h.startswith("remember_token") for h in signed.headers.getlist("Set-Cookie"))
    for path in PAGES:
        for headers in ({}, HX):
            response = client.get(path, headers=headers, **https)
            assert response.status_code in (200, 302, 410), (path, response.status_code)
            h = response.headers
            csp = h["Content-Security-Policy"]
            for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
                assert directive in csp, (path, directive)
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert h["X-Content-Type-Options"] == "nosniff"
            assert h["Cache-Control"] == "no-store", path
            max_age = int(re.search(r"max-age=(\d+)", h["Strict-Transport-Security"]).group(1))
            assert max_age >= 31536000
            if path.startswith(("/invite/", "/reset-password/")):
                assert h["Referrer-Policy"] == "no-referrer"
            else:
                assert h["Referrer-Policy"] in ("no-referrer", "same-origin", "strict-origin")
    export = client.get(f"{USERS}/export", **https)
    assert export.headers["Cache-Control"] == "no-store"
    page = client.get(f"{USERS}/", **https).get_data(as_text=True)
    config = json.loads(re.search(r"<meta name=\"htmx-config\" content='([^']+)'", page).group(1))
    assert config["historyCacheSize"] == 0 and config["allowEval"] is False
    assert "<script>" not in page and " onclick=" not in page and " style=" not in page
