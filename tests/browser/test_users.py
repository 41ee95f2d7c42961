"""The Users tab in Chromium: New User → invitation mail → accept → sign in; select all + bulk."""
import re

import pytest

from portal.services import outbox
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import age_invitations
from tests.builders import make_group
from tests.builders import make_user

pytestmark = pytest.mark.browser

NEW_PASSWORD = "plum orchard lantern 7 quietly"


def test_a_user_created_in_the_sidebar_accepts_the_invitation_and_signs_in(
    page, new_page, live_server, account, smtp
):
    make_group(account, "Drivers")
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")

    page.get_by_role("link", name="New User").click()
    sidebar = page.locator("#sidebar")
    sidebar.get_by_role("heading", name="New User").wait_for()
    sidebar.get_by_label("Full Name").fill("Grace Hopper")
    sidebar.get_by_label("Email").fill("not-an-address")
    sidebar.get_by_role("button", name="Add user").click()
    sidebar.get_by_text("That e-mail address is not valid").wait_for()
    assert sidebar.get_by_label("Full Name").input_value() == "Grace Hopper"  # nothing lost
    sidebar.get_by_label("Email").fill("grace@example.com")
    sidebar.get_by_label("Phone").fill("+1 415 555 2671")
    sidebar.get_by_label("Drivers").check()
    sidebar.get_by_role("button", name="Add user").click()
    page.get_by_text("Added Grace Hopper; an e-mail is on its way").wait_for()
    page.locator("#sidebar:empty").wait_for(state="attached")
    row = page.locator("#rows tbody tr", has_text="Grace Hopper")
    assert "Drivers" in row.inner_text() and "queued" in row.inner_text()

    live_server.settle()
    assert outbox.deliver_due().sent == 1
    [invitation] = smtp.to("grace@example.com")
    link = re.search(r"http://portal\.test(/invite/\S+)", invitation.text).group(1)

    grace = new_page()
    grace.goto(link)
    grace.get_by_role("heading", name=f"Join {account.name}").wait_for()
    grace.get_by_label("New password").fill(NEW_PASSWORD)
    grace.get_by_label("Repeat the password").fill(NEW_PASSWORD)
    grace.get_by_role("button", name="Accept invitation").click()
    grace.wait_for_url("**/login?login_hint=*")
    assert grace.get_by_label("E-mail").input_value() == "grace@example.com"
    grace.get_by_label("Password").fill(NEW_PASSWORD)
    grace.get_by_role("button", name="Sign in").click()
    grace.wait_for_url("**/account")
    assert grace.get_by_text("grace@example.com").is_visible()
    assert grace.get_by_label("Name", exact=True).input_value() == "Grace Hopper"

    page.reload()
    assert "accepted" in page.locator("#rows tbody tr", has_text="Grace Hopper").inner_text()


def test_select_all_matching_then_resend_invite(page, live_server, account, smtp):
    for n in range(55):
        make_user(account, name=f"Night Worker {n:02}", email=f"night{n:02}@example.com",
                  password=None)
    make_user(account, name="Night Owl Joined", email="owl@example.com")
    make_user(account, name="Day Worker", email="day@example.com", password=None)
    outbox.deliver_due(limit=500)  # the first invitations, out of the way
    smtp.messages.clear()
    age_invitations()  # sent a while ago: Resend Invite holds back invitations minutes old
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")

    page.get_by_label("Search").fill("night")
    page.wait_for_url("**/users/?q=night")
    bar = page.locator("[data-selection-bar]")
    bar.get_by_text("56 users match").wait_for()
    page.get_by_label("Select all users on this page").check()
    assert bar.get_by_text("50 selected").is_visible()
    page.get_by_label("Select all 56 matching").check()
    assert bar.get_by_text("All 56 matching users selected").is_visible()

    page.get_by_role("button", name="Resend Invite").click()
    # Issue 14: a mass action asks first, in a modal dialog naming how many; nothing is sent yet.
    dialog = page.locator("dialog[open]")
    dialog.get_by_text("Resend 56 invitations?").wait_for()
    assert dialog.evaluate("d => d.matches(':modal')")
    live_server.settle()
    assert outbox.deliver_due(limit=500).sent == 0 and smtp.messages == []
    dialog.get_by_role("button", name="Resend Invite").click()
    page.get_by_text(
        "Invite resent to 55 users; 1 skipped because they have already signed in."
    ).wait_for()
    assert page.url.endswith("/users/?q=night")
    assert page.get_by_label("Select all users on this page").is_checked() is False

    live_server.settle()
    outbox.deliver_due(limit=500)
    resent = [m for m in smtp.messages if m.recipients[0].startswith("night")]
    assert len(resent) == 55
    assert smtp.to("day@example.com") == [] and smtp.to("owl@example.com") == []
