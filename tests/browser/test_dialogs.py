"""Issue 14, finding 3: side panels are modal dialogs; focus, Escape and errors by keyboard."""
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_user

pytestmark = pytest.mark.browser

FOCUSED = "() => { const el = document.activeElement; return el.id || el.name || el.textContent.trim(); }"


def test_panels_are_modal_dialogs_that_keep_focus_and_show_every_error(page, live_server, account):
    make_user(account, name="Ann Example")
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    panel = page.locator("#sidebar")

    # New User by keyboard: focus moves to its first field, inside a modal dialog.
    page.get_by_role("link", name="New User").focus()
    page.keyboard.press("Enter")
    expect(panel.get_by_label("Full Name")).to_be_focused()
    assert panel.evaluate("el => el.matches('dialog:modal')")

    # A refused submit keeps the dialog, shows every error next to its field, focuses the first.
    panel.get_by_label("Email").fill("not-an-address")
    panel.get_by_label("Phone").fill("+44 12")
    panel.get_by_role("button", name="Add user").click()
    expect(panel.get_by_text("That phone number is not valid.")).to_be_visible()
    for label, error in (("Full Name", "A name is required."),
                         ("Email", "not valid"),
                         ("Phone", "That phone number is not valid.")):
        field = panel.get_by_label(label)
        expect(field).to_have_attribute("aria-invalid", "true")
        described = page.locator("#" + field.get_attribute("aria-describedby").split()[-1])
        expect(described).to_contain_text(error)
    expect(panel.get_by_label("Full Name")).to_be_focused()
    assert panel.evaluate("el => el.matches('dialog:modal')")

    # Tab stays inside the dialog (past its end it visits the browser's own controls, where
    # the document has no focused element, and comes back); nothing behind it is reached.
    inside = set()
    for _ in range(16):
        page.keyboard.press("Tab")
        where = panel.evaluate("el => el.contains(document.activeElement) ? 'in'"
                               " : document.activeElement === document.body ? 'browser' : 'behind'")
        assert where != "behind", page.evaluate(FOCUSED)
        inside.add(page.evaluate(FOCUSED) if where == "in" else where)
    assert {"name", "email", "Add user"} <= inside
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.get_by_role("link", name="New User")).to_be_focused()

    # The Import/Export menu opens by keyboard and closes with Escape, focus on its button.
    menu = page.locator("details.menu.dropdown",
                        has=page.locator("summary", has_text="Import/Export"))
    menu.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    expect(menu.locator("summary")).to_be_focused()

    # Import from the menu: focus on its file field; Escape gives it back to the menu's button.
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Import Users via CSV")).to_be_focused()
    page.keyboard.press("Enter")
    expect(panel.get_by_label("Browse CSV File")).to_be_focused()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(menu.locator("summary")).to_be_focused()

    # A whole page with a panel (no JavaScript needed) opens it as a modal dialog too.
    page.goto("/admin/participants/users/new")
    expect(panel.get_by_label("Full Name")).to_be_focused()
    assert panel.evaluate("el => el.matches('dialog:modal')")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
