"""Delete users in the browser: blocked → fixed → deleted → restored."""
import pytest
from playwright.sync_api import expect

from portal.services import groups
from tests.browser.conftest import confirmation
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user

pytestmark = pytest.mark.browser


def row(page, name):
    return page.locator("#rows tbody tr", has_text=name)


def test_delete_is_blocked_then_fixed_then_done_then_restored(page, live_server, account):
    dana = make_user(account, name="Dana Driver")
    make_user(account, name="Pat Person")
    sam = make_user(account, name="Sam Spare")
    drivers = make_group(account, "Drivers", [dana])
    make_taskstream(account, "Delivery", [("Deliver", drivers.id)])
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")

    # Delete two: the panel names them and says who cannot go, and why.
    row(page, "Dana Driver").get_by_role("checkbox").check()
    row(page, "Pat Person").get_by_role("checkbox").check()
    # The one confirmation (issue 14): a modal dialog, Escape closes it and gives focus back.
    panel = confirmation(page, page.get_by_role("button", name="Delete", exact=True),
                         "Delete 2 users: Dana Driver, Pat Person?")
    assert panel.evaluate("d => d.matches('#confirm dialog.confirm')")
    assert panel.get_by_text("The only member of group “Drivers”").is_visible()
    panel.get_by_role("button", name="Delete 1 user").click()
    page.get_by_text("Deleted 1 user.").wait_for()
    assert row(page, "Pat Person").count() == 0 and row(page, "Dana Driver").count() == 1
    # Who was not deleted, and why: the same dialog, with a Close button.
    assert panel.get_by_text("was not deleted").is_visible()
    panel.get_by_role("button", name="Close").click()
    expect(page.locator("#confirm dialog")).to_have_count(0)

    # Another admin fixes it (the Groups tab's own page will do this): Sam joins Drivers.
    live_server.settle()
    groups.insert_members(account.admin, [drivers.id], [sam.id])
    live_server.settle()
    page.reload()
    row(page, "Dana Driver").get_by_role("checkbox").check()
    page.get_by_role("button", name="Delete", exact=True).click()
    panel = page.locator("dialog[open]")
    panel.get_by_text("Delete Dana Driver?").wait_for()
    panel.get_by_role("button", name="Delete 1 user").click()
    page.get_by_text("Deleted 1 user.").wait_for()
    assert row(page, "Dana Driver").count() == 0
    expect(page.locator("dialog[open]")).to_have_count(0)

    # Restore Dana from Deleted users: back in the list, in her group.
    page.get_by_role("link", name="Deleted users").click()
    page.wait_for_url("**/users/deleted")
    assert row(page, "Pat Person").is_visible()
    page.get_by_role("button", name="Restore Dana Driver").click()
    page.get_by_text("Restored 1 user with the groups and role they had.").wait_for()
    assert row(page, "Dana Driver").count() == 0
    page.get_by_role("link", name="Back to Users").click()
    assert row(page, "Dana Driver").get_by_text("Drivers").is_visible()
