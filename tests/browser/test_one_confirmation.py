"""Issue 14, findings 2 and 7: one confirmation for every destructive action, a modal dialog in
view that says what and how many; what cannot be done says why instead of asking."""
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user

pytestmark = pytest.mark.browser

IN_VIEW = """el => { const r = el.getBoundingClientRect();
  return r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth; }"""


def question(page):
    """The open confirmation: a modal dialog (the browser's confirm() would be dismissed)."""
    dialog = page.locator("dialog[open]")
    dialog.wait_for()
    assert dialog.evaluate("d => d.matches(':modal')")
    return dialog


def test_groups_taskstreams_and_users_are_deleted_through_one_question(page, live_server, account):
    ann, bo = make_user(account, name="Ann Example"), make_user(account, name="Bo Example")
    drivers = make_group(account, "Drivers", members=[ann, bo])
    office = make_group(account, "Office", members=[ann])
    stream = make_taskstream(account, "Delivery round", [("Load", office.id)])
    empty = make_taskstream(account, "Spare round", [])
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")

    # A group: the question says what and how many; Cancel changes nothing; confirming deletes.
    page.goto(f"/admin/participants/groups/{drivers.id}")
    page.get_by_role("button", name="Delete").click()
    dialog = question(page)
    expect(dialog.get_by_role("heading")).to_have_text("Delete the group “Drivers”?")
    expect(dialog).to_contain_text("Their 2 members stay in the account")
    dialog.get_by_role("link", name="Cancel").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    page.get_by_role("button", name="Delete").click()
    question(page).get_by_role("button", name="Delete group").click()
    page.wait_for_url("**/admin/participants/groups/")
    expect(page.get_by_text("Deleted the group “Drivers”.")).to_be_visible()

    # A group a step needs is not asked about: it says why, with the way to fix it.
    page.goto(f"/admin/participants/groups/{office.id}")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("is assigned to the step “Load”")).to_be_visible()
    expect(page.get_by_role("link", name="Go to “Load” in Delivery round")).to_be_visible()
    expect(page.locator("dialog[open]")).to_have_count(0)

    # A taskstream: its step count follows a new step without a reload; Delete asks first.
    page.goto(f"/admin/taskstreams/{empty.id}")
    expect(page.locator("#stream_head")).to_contain_text("0 steps")
    page.get_by_label("Step", exact=True).fill("Check")
    page.get_by_role("button", name="Add step").click()
    expect(page.locator("#stream_head")).to_contain_text("1 step ·")
    page.get_by_role("button", name="Delete").click()
    dialog = question(page)
    expect(dialog.get_by_role("heading")).to_have_text("Delete the taskstream “Spare round”?")
    expect(dialog).to_contain_text("Its 1 step goes with it")
    dialog.get_by_role("button", name="Delete taskstream").click()
    page.wait_for_url("**/admin/taskstreams/")
    expect(page.get_by_text("Deleted the taskstream “Spare round”.")).to_be_visible()
    expect(page.get_by_role("link", name=stream.name)).to_be_visible()

    # Delete from User Details: the question is in view, whatever the page's scroll.
    page.goto(f"/admin/participants/users/{bo.id}")
    page.get_by_role("button", name="Delete").scroll_into_view_if_needed()
    page.get_by_role("button", name="Delete").click()
    panel = page.locator("dialog[open]")  # the one confirmation, as for groups and taskstreams
    asked = panel.get_by_text("Delete Bo Example?")
    expect(asked).to_be_visible()
    assert panel.evaluate("d => d.matches(':modal')") and asked.evaluate(IN_VIEW)
    panel.get_by_role("button", name="Delete 1 user").click()
    page.wait_for_url("**/admin/participants/users/")
    expect(page.get_by_text("Deleted 1 user.")).to_be_visible()

    # Deleting only someone who cannot be deleted does not ask: it says why.
    page.goto(f"/admin/participants/users/{account.admin.id}")
    page.get_by_role("button", name="Delete").click()
    expect(panel.get_by_text(f"{account.admin.user.name} cannot be deleted:")).to_be_visible()
    expect(panel.get_by_text("Delete Admin", exact=False)).to_have_count(0)
    expect(panel.get_by_role("button", name="Delete 1 user")).to_have_count(0)
