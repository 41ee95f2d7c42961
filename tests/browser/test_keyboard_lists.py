"""Keyboard-driven lists (issue 14): Users, Groups and Deleted users by keys alone.

`/` searches, `j`/`k` move, `x` selects, Enter opens, Shift+A reaches the bulk actions, Escape
clears, `?` lists the keys; nothing fires while typing; the focused row is an ARIA grid row
(roving tabindex), so a screen reader announces it; htmx swaps keep it working.

Run at both screens of issue 14: a phone or tablet at 390 px may well have a keyboard attached
(and a screen reader's grid navigation is the same), so the same keys must work there, on a
list that does not scroll sideways.
"""
import re

import pytest
from playwright.sync_api import expect

from tests.browser import axe
from tests.browser.conftest import VIEWPORTS
from tests.browser.conftest import fits
from tests.browser.conftest import shot
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import delete_users
from tests.builders import make_group
from tests.builders import make_user

pytestmark = pytest.mark.browser


def row(page, name):
    """The grid row a screen reader announces by its content."""
    return page.get_by_role("row", name=re.compile(name))


@pytest.mark.parametrize("size", VIEWPORTS)
def test_the_lists_are_driven_by_keyboard(size, page, live_server, account):
    ada = make_user(account, name="Ada Lovelace", email="ada@example.com")
    make_user(account, name="Bob Babbage", email="bob@example.com")
    make_user(account, name="Cy Clarke", email="cy@example.com", password=None)
    dee = make_user(account, name="Dee Deleted", email="dee@example.com")
    eve = make_user(account, name="Eve Erased", email="eve@example.com")
    make_group(account, "Drivers", members=[ada])
    make_group(account, "Office")
    delete_users(account, dee, eve)
    live_server.settle()
    page.set_viewport_size(VIEWPORTS[size])
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    grid = page.get_by_role("grid", name="Users")
    expect(grid).to_have_attribute("aria-multiselectable", "true")
    fits(page)

    # j and k move a single tab stop through the rows; the focused row is announced by name.
    page.keyboard.press("j")
    expect(row(page, "Ada Lovelace")).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(row(page, "Bob Babbage")).to_be_focused()
    page.keyboard.press("k")
    expect(row(page, "Admin")).to_be_focused()
    page.keyboard.press("ArrowDown")
    bob = row(page, "Bob Babbage")
    expect(bob).to_be_focused()
    assert page.locator("#rows tbody tr[tabindex='0']").count() == 1

    # x selects the row (the selection bar counts it); Shift+A reaches the bulk actions.
    page.keyboard.press("x")
    expect(bob).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text("1 selected")).to_be_visible()
    fits(page)
    shot(page, f"keys-{size}-row-selected")
    page.keyboard.press("Shift+A")
    expect(page.get_by_role("button", name="Resend Invite")).to_be_focused()
    page.keyboard.press("Escape")
    expect(bob).to_have_attribute("aria-selected", "false")
    expect(page.get_by_label("Select Bob Babbage")).not_to_be_checked()
    expect(page.get_by_text("1 selected")).to_have_count(0)

    # ? lists the keys in a modal dialog that Escape closes, back to the row.
    bob.focus()
    page.keyboard.press("?")
    keys = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(keys).to_be_visible()
    assert keys.evaluate("d => d.matches(':modal')")
    expect(keys.get_by_text("Select or unselect the row")).to_be_visible()
    axe.assert_accessible(page, "the list of keys")
    fits(page)
    shot(page, f"keys-{size}-help")
    page.keyboard.press("j")  # a dialog is open: the list behind does not move
    page.keyboard.press("Escape")
    expect(keys).to_be_hidden()
    expect(bob).to_be_focused()

    # / goes to the search; typing there is typing, not shortcuts.
    page.keyboard.press("/")
    search = page.get_by_label("Search")
    expect(search).to_be_focused()
    page.keyboard.type("jx")
    expect(search).to_have_value("jx")
    expect(page.locator("#rows tbody tr[aria-selected=true]")).to_have_count(0)
    search.fill("")
    page.keyboard.type("cy")
    page.wait_for_url("**/users/?q=cy")
    expect(row(page, "Cy Clarke")).to_be_visible()
    expect(row(page, "Bob Babbage")).to_have_count(0)

    # After the swap the new rows are a grid too: j moves into them, x and Enter work.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("j")
    cy = row(page, "Cy Clarke")
    expect(cy).to_be_focused()
    page.keyboard.press("x")
    expect(cy).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Escape")
    expect(cy).to_have_attribute("aria-selected", "false")

    # Sorting swaps the rows while one has focus: focus stays on the same person.
    page.get_by_label("Search").fill("")
    page.wait_for_url(re.compile(r".*/users/(\?q=)?$"))
    expect(row(page, "Bob Babbage")).to_be_visible()
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(row(page, "Bob Babbage")).to_be_focused()
    page.get_by_label("Select Bob Babbage").click()  # selecting keeps the row current
    page.evaluate("htmx.ajax('GET', location.pathname + '?sort=-name', {target: '#rows'})")
    expect(page.locator("#rows tbody tr").first).to_contain_text("Cy Clarke")
    expect(row(page, "Bob Babbage")).to_be_focused()
    page.keyboard.press("Escape")

    # Enter opens the focused row.
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/users/\d+$"))
    expect(page.get_by_role("heading", name="Cy Clarke", level=1)).to_be_visible()

    # Groups: the same keys.
    page.goto("/admin/participants/groups/")
    fits(page)
    page.keyboard.press("j")
    expect(row(page, "Drivers")).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(row(page, "Office")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Escape")
    expect(row(page, "Office")).to_have_attribute("aria-selected", "false")
    page.keyboard.press("/")
    expect(page.get_by_label("Search groups")).to_be_focused()

    # Deleted users: move, select, Shift+A reaches Restore; no Enter to open (no page to open).
    page.goto("/admin/participants/users/deleted")
    fits(page)
    page.keyboard.press("j")  # the latest deleted first
    expect(row(page, "Eve Erased")).to_be_focused()
    page.keyboard.press("x")
    page.keyboard.press("Shift+A")
    restore = page.locator(".bulk-actions").get_by_role("button", name="Restore")
    expect(restore).to_be_focused()
    page.keyboard.press("?")
    expect(page.get_by_role("dialog").get_by_text("Open the row")).to_have_count(0)
    page.keyboard.press("Escape")
    restore.press("Enter")
    expect(row(page, "Eve Erased")).to_have_count(0)
    expect(row(page, "Dee Deleted")).to_be_visible()


def test_a_key_pressed_as_the_keys_dialog_closes_keeps_its_focus(page, live_server, account):
    """The keys dialog's close event comes a task after it closed, and a browser handles input
    first: "/" pressed right after Escape went to the search, then the close handler took the
    focus back to the row (a CI run failed so). Here the key lands in the same task as the
    close, which makes that order certain."""
    make_user(account, name="Ada Lovelace", email="ada@example.com")
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    page.keyboard.press("j")
    ada = row(page, "Ada Lovelace")
    expect(ada).to_be_focused()
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.evaluate("""() => {
        document.getElementById("keys-help").close();
        document.activeElement.dispatchEvent(
            new KeyboardEvent("keydown", {key: "/", bubbles: true, cancelable: true}));
    }""")
    search = page.get_by_label("Search")
    expect(search).to_be_focused()
    page.wait_for_timeout(300)  # the close event has long been handled by now
    expect(search).to_be_focused()
    # Closed with nothing pressed meanwhile, the focus is back on the row.
    page.keyboard.press("Escape")
    ada.focus()
    page.keyboard.press("?")
    page.keyboard.press("Escape")
    expect(ada).to_be_focused()
