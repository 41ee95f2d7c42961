"""A person adds a passkey on /account/security and signs in with it (issue 18).

Chromium's virtual authenticator (DevTools protocol: WebAuthn.enable and
WebAuthn.addVirtualAuthenticator, through Playwright's CDP session) stands in for a security key
or a phone. WebAuthn needs a domain, not an IP address, as its relying party: the browser opens
the live server as http://localhost:<port> (a secure context), and BASE_URL says the same.
"""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Device
from portal.models import SecondFactor
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_user

pytestmark = pytest.mark.browser


@pytest.fixture
def localhost_page(browser, live_server, app):
    base = live_server.url.replace("127.0.0.1", "localhost")
    app.config["BASE_URL"] = base
    context = browser.new_context(base_url=base)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text else None)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }})
    page.authenticator = (cdp, authenticator["authenticatorId"])
    yield page
    context.close()
    assert not errors, f"the page logged errors: {errors}"


def test_a_person_adds_a_passkey_and_signs_in_with_it(localhost_page, live_server, account):
    page = localhost_page
    member = make_user(account, name="Ana Berg")
    email = member.user.email
    live_server.settle()
    sign_in(page, email, PASSWORD)
    page.wait_for_url("**/account")
    page.get_by_role("link", name="Sign-in security").click()
    page.wait_for_url("**/account/security")
    page.get_by_label("Passkey name").fill("Work laptop")
    page.get_by_role("button", name="Add a passkey").click()
    page.get_by_text("Added the passkey Work laptop.").wait_for()
    row = page.locator(".factors-table tr", has_text="Work laptop")
    assert row.get_by_text("Passkey").is_visible() and row.get_by_text("never").is_visible()
    cdp, authenticator_id = page.authenticator
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    assert len(stored["credentials"]) == 1

    live_server.settle()
    devices_before = db.session.scalar(sa.select(sa.func.count(Device.id)).where(
        Device.user_id == member.user_id))
    live_server.settle()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    sign_in(page, email, PASSWORD)
    page.wait_for_url("**/login/second-factor**")
    live_server.settle()
    # The password alone made no device.
    assert db.session.scalar(sa.select(sa.func.count(Device.id)).where(
        Device.user_id == member.user_id)) == devices_before
    live_server.settle()
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url("**/account")
    page.goto("/account/security")
    row = page.locator(".factors-table tr", has_text="Work laptop")
    assert not row.get_by_text("never").is_visible()  # last use shown

    live_server.settle()
    factor = db.session.scalar(sa.select(SecondFactor).where(
        SecondFactor.user_id == member.user_id))
    assert factor.kind == "passkey" and factor.last_used_at is not None
    used = db.session.scalars(sa.select(AuditEvent.details).where(
        AuditEvent.action == "second_factor.used", AuditEvent.subject_user_id == member.user_id))
    assert [d["kind"] for d in used] == ["passkey"]
    live_server.settle()
