"""The admin flows of issue 14 at 1440×900 and at 390×844, one browser session each.

New User, import, user details edit, Reset Password, devices, Add to Group from User Details,
delete and restore, taskstreams and settings; at every step the page fits the screen (nothing
scrolls sideways), and every confirmation is a modal dialog holding focus that Escape closes,
giving focus back to the button that asked. (The Users tab's select-all + Resend Invite, the
other ways to add to groups, the blocked deletion and the keyboard lists have their own tests:
test_users, test_groups, test_deletion, test_keyboard_lists.)
"""
import re

import pytest
from playwright.sync_api import expect

from portal.services import outbox
from tests.browser.conftest import VIEWPORTS
from tests.browser.conftest import confirmation
from tests.browser.conftest import fits
from tests.browser.conftest import shot
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import csv_bytes
from tests.builders import make_device
from tests.builders import make_group
from tests.builders import make_user

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("size", VIEWPORTS)
def test_an_admin_works_through_every_flow(size, page, live_server, account, smtp, tmp_path):
    ada = make_user(account, name="Ada Active", email="ada@example.com")
    make_device(ada.user, name="Laptop")
    make_group(account, "Drivers", members=[ada])
    make_group(account, "Office")
    live_server.settle()
    page.set_viewport_size(VIEWPORTS[size])
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    fits(page)

    # New User.
    page.get_by_role("link", name="New User").click()
    panel = page.locator("#sidebar")
    panel.get_by_label("Full Name").fill("Grace Hopper")
    panel.get_by_label("Email").fill("grace@example.com")
    panel.get_by_role("button", name="Add user").click()
    expect(page.get_by_text(re.compile("Added Grace Hopper"))).to_be_visible()
    expect(page.locator("#rows tbody tr", has_text="Grace Hopper")).to_be_visible()
    fits(page)

    # Import Users via CSV.
    path = tmp_path / "people.csv"
    path.write_bytes(csv_bytes([("Lin Import", "lin@example.com", "Office")]))
    page.goto("/admin/participants/users/import")
    page.get_by_label("Browse CSV File").set_input_files(str(path))
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url("**/admin/participants/users/import/*")
    fits(page)
    page.get_by_role("button", name="Import all").click()
    expect(page.get_by_text("1 user imported")).to_be_visible()

    # User details: edit the profile.
    page.goto(f"/admin/participants/users/{ada.id}")
    fits(page)
    page.get_by_role("link", name="Edit").click()
    profile = page.locator("#profile")
    profile.get_by_label("Full Name").fill("Ada King")
    profile.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1, name="Ada King")).to_be_visible()
    # The tab and the history say the new name as well.
    expect(page).to_have_title("Ada King · Users · Participants Portal")
    # No section of the page still says the old name (the second factor and Delete did).
    expect(page.locator("main").get_by_text("Ada Active")).to_have_count(0)
    shot(page, f"flows-{size}-user-details")

    # Reset Password mails a link.
    page.get_by_role("button", name="Reset Password").click()
    expect(page.get_by_text(re.compile("A link to reset the password"))).to_be_visible()
    live_server.settle()
    outbox.deliver_due(limit=50)
    assert any("/reset-password/" in m.text for m in smtp.to("ada@example.com"))

    # Devices: log out the laptop, asked first.
    devices = page.locator("#devices")
    dialog = confirmation(page, devices.get_by_role("button", name="Log out Laptop"),
                          "Log out Laptop?")
    shot(page, f"flows-{size}-log-out-device")
    dialog.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("Laptop is logged out.")).to_be_visible()
    expect(devices.get_by_role("button", name="Log out Laptop")).to_have_count(0)

    # Add to Group from User Details: a side panel, a modal dialog too.
    panel = confirmation(page, page.locator("#participates_in").get_by_role(
        "link", name="Add to Group"), "Add to Group")
    panel.get_by_label("Office").check()
    panel.get_by_role("button", name="Add to Group").click()
    expect(page.locator("#participates_in").get_by_role("link", name="Office")).to_be_visible()
    fits(page)

    # Delete from User Details, then restore from Deleted users.
    panel = confirmation(page, page.locator(".danger-zone").get_by_role("button", name="Delete"),
                         "Delete Ada King?")
    shot(page, f"flows-{size}-delete")
    fits(page)
    panel.get_by_role("button", name="Delete 1 user").click()
    expect(page.get_by_text("Deleted 1 user.")).to_be_visible()
    page.goto("/admin/participants/users/deleted")
    fits(page)
    page.get_by_role("button", name="Restore Ada King").click()
    expect(page.get_by_text(re.compile("Restored 1 user"))).to_be_visible()

    # Taskstreams: a new one, with a step assigned to a group.
    page.goto("/admin/taskstreams/")
    fits(page)
    page.get_by_label("Name of the new taskstream").fill("Onboarding")
    page.get_by_role("button", name="New Taskstream").click()
    expect(page.get_by_role("heading", level=1, name="Onboarding")).to_be_visible()
    page.get_by_label("Step", exact=True).fill("Check papers")
    page.get_by_label("Assigned to").select_option(label="Drivers")
    page.get_by_role("button", name="Add step").click()
    expect(page.get_by_label("Group assigned to Check papers")).to_have_value(
        re.compile(r"\d+"))
    fits(page)
    shot(page, f"flows-{size}-taskstream")

    # Settings.
    page.goto("/admin/settings/")
    fits(page)
    page.get_by_label("Invitation links stay valid for (hours)").fill("48")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(page.get_by_label("Invitation links stay valid for (hours)")).to_have_value("48")
