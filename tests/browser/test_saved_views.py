"""Saved views in the browser (issue 15, item 5): save the Users list's filter under a name,
open it from beside the tabs, rename it and delete it through the one confirmation."""
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from portal.extensions import db
from portal.models import SavedView
from tests.browser.conftest import shot
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_group
from tests.builders import make_user

pytestmark = pytest.mark.browser


def saved(live_server) -> list[tuple[str, str]]:
    live_server.settle()
    return [(v.name, v.query) for v in db.session.scalars(sa.select(SavedView).order_by(
        SavedView.id))]


def save_view(page, name: str) -> None:
    page.locator("summary", has_text="Save view").click()
    page.get_by_label("Name of this view").fill(name)
    page.locator(".save-view").get_by_role("button", name="Save").click()
    expect(page.locator(".view-link.active a")).to_have_text(name)


def test_save_open_rename_and_delete_a_view_of_the_users_list(page, live_server, account):
    ana = make_user(account, name="Ana Alpha")
    make_user(account, name="Bo Beta", password=None)
    red = make_group(account, "Red", members=[ana])
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")

    # The query changes through htmx; Save view stores it (the URL is the source of truth).
    page.get_by_label("Group").select_option(label="Red")
    page.wait_for_url(f"**/users/?group={red.id}")
    save_view(page, "Red team")
    page.get_by_label("Invitation").select_option("sent")
    page.wait_for_url("**invitation=sent")
    expect(page.locator(".view-link.active")).to_have_count(0)  # marked out of band
    save_view(page, "Sent in Red")
    assert saved(live_server) == [("Red team", f"group={red.id}"),
                                  ("Sent in Red", f"group={red.id}&invitation=sent")]
    shot(page, "saved-views-users")

    # Opening a view is a plain link to the list with its query.
    page.goto("/admin/participants/users/")
    expect(page.locator(".view-link.active")).to_have_count(0)
    page.get_by_role("link", name="Red team").click()
    page.wait_for_url(f"**/users/?group={red.id}")
    expect(page.get_by_label("Group")).to_have_value(str(red.id))
    expect(page.locator("#rows tbody tr")).to_have_count(1)
    expect(page.locator(".view-link.active a")).to_have_text("Red team")

    # Rename from beside the tabs.
    page.get_by_label("Rename or delete the view Red team").click()
    item = page.locator(".view-link", has_text="Red team")
    item.get_by_role("textbox", name="Name").fill("Red crew")
    item.get_by_role("button", name="Rename").click()
    expect(page.locator("#flashes")).to_contain_text("Renamed the view “Red team” to “Red crew”.")
    expect(page.locator(".view-link.active a")).to_have_text("Red crew")

    # Delete through the one confirmation: nothing goes until it is answered.
    page.get_by_label("Rename or delete the view Red crew").click()
    page.locator(".view-link", has_text="Red crew").get_by_role("button", name="Delete view").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("Delete the view “Red crew”?")
    assert len(saved(live_server)) == 2
    dialog.get_by_role("button", name="Delete view").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(page.locator("#flashes")).to_contain_text("Deleted the view “Red crew”.")
    expect(page.locator(".view-link")).to_have_count(1)
    assert saved(live_server) == [("Sent in Red", f"group={red.id}&invitation=sent")]
