"""Issue 15, items 1-3 in Chromium: the invitation counts at the top of Users and their one
Resend Invite (through the confirmation dialog), the invitation filter, Copy invitation link on
User Details, and Outgoing mail paged and searched. One flow, one browser page.

PORTAL_SCREENSHOTS=dir keeps a picture of each screen for a person to look at.
"""
import pytest

from portal.services import invitations
from portal.services import outbox
from tests.browser.conftest import shot
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_user
from tests.services.test_invitation_states import REFUSAL
from tests.services.test_invitation_states import expire

pytestmark = pytest.mark.browser


def test_lapsed_invitations_resend_copy_a_link_and_find_mail(page, new_page, live_server,
                                                             account, smtp):
    smtp.refuse["bad@nowhere.example"] = REFUSAL
    invitations.add_person(account.admin, name="Bad Address", email="bad@nowhere.example")
    outbox.deliver_all_due()
    old = [make_user(account, name=f"Old {n}", email=f"old{n}@example.com", password=None)
           for n in range(2)]
    expire(*old)
    for n in range(52):
        make_user(account, name=f"Person {n:02}", email=f"p{n:02}@example.com", password=None)
    fresh = make_user(account, name="Fresh Face", email="fresh@example.com", password=None)
    live_server.settle()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")

    # 1. The counts at the top of Users, and their one Resend Invite, asked first.
    summary = page.locator("#invitations")
    assert summary.inner_text().startswith("2 invitations expired, 1 refused:")
    shot(page, "invites-users-header", page.locator("main"))
    summary.get_by_role("button", name="Resend Invite").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("heading", name="Resend 3 invitations?").wait_for()
    dialog.get_by_role("button", name="Resend Invite").click()
    page.get_by_text("Invite resent to 3 users.").wait_for()
    page.locator("dialog[open]").wait_for(state="detached")
    assert summary.inner_text().strip() == ""

    # 2. The filter: only refused ones (none now), then the queued ones.
    page.get_by_label("Invitation").select_option("queued")
    page.wait_for_url("**?invitation=queued")
    assert "56 users match" in page.locator("[data-selection-count]").inner_text()
    assert "queued" in page.locator("#rows tbody tr", has_text="Fresh Face").inner_text()

    # 3. Copy invitation link on User Details: the link shows once and works.
    page.get_by_role("link", name="Fresh Face").click()
    page.get_by_role("heading", name="Fresh Face").wait_for()
    assert "queued" in page.locator("#user-head").inner_text()
    page.get_by_role("button", name="Copy invitation link").click()
    link = page.get_by_label("Invitation link for fresh@example.com").input_value()
    page.get_by_role("button", name="Copy", exact=True).click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == link
    assert "sent" in page.locator("#user-head .badge").inner_text()
    shot(page, "invites-user-details-copied-link")
    person = new_page()
    person.goto(link.replace("http://portal.test", live_server.url))
    person.get_by_role("heading", name=f"Join {account.name}").wait_for()
    # Copying again stops the link handed over: asked first.
    page.get_by_role("button", name="Copy invitation link").click()
    page.locator("dialog[open]").get_by_role("heading", name="Copy a new invitation link?").wait_for()
    page.locator("dialog[open]").get_by_role("link", name="Cancel").click()
    page.locator("dialog[open]").wait_for(state="detached")
    assert fresh.id

    # 4. Outgoing mail: paged, searched by recipient, no link anywhere.
    page.goto("/admin/outbox/")
    assert "1–50 of" in page.locator(".pagination").first.inner_text()
    page.get_by_role("link", name="Next ›").first.click()
    page.wait_for_url("**/admin/outbox/?page=2")
    page.get_by_placeholder("Search by recipient or subject").fill("p07@")
    page.wait_for_url("**/admin/outbox/?q=p07*")
    rows = page.locator("#messages tbody tr")
    rows.first.wait_for()
    assert rows.count() == 1 and "p07@example.com" in rows.first.inner_text()
    shot(page, "invites-outgoing-mail-search")
    page.goto("/admin/outbox/")
    shot(page, "invites-outgoing-mail")
    assert "/invite/" not in page.content()
