"""The four ways to add users to groups, in the browser (all end in groups.add_to_groups).

Each way runs at both screens of issue 14 (1440×900 and 390×844): the membership really changes,
no page scrolls sideways, and each panel or question is a modal dialog with focus inside that
Escape closes, giving focus back to what opened it.
"""
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from portal.extensions import db
from portal.models import Group
from portal.models import GroupMember
from tests.browser.conftest import VIEWPORTS
from tests.browser.conftest import confirmation
from tests.browser.conftest import fits
from tests.browser.conftest import shot
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user

pytestmark = pytest.mark.browser


def members_of(live_server, name) -> set[str]:
    live_server.settle()
    group = db.session.scalar(sa.select(Group).where(Group.name == name))
    rows = db.session.scalars(
        sa.select(GroupMember.membership_id).where(GroupMember.group_id == group.id))
    return set(rows)


@pytest.mark.parametrize("size", VIEWPORTS)
def test_a_users_tab_selection_is_added_to_a_group_and_a_new_one(size, page, live_server, account):
    ana = make_user(account, name="Ana Alpha")
    bo = make_user(account, name="Bo Beta")
    make_user(account, name="Cy Gamma")
    make_group(account, "Reviewers")
    live_server.settle()
    page.set_viewport_size(VIEWPORTS[size])
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    for name in ("Ana Alpha", "Bo Beta"):
        page.locator("#rows tbody tr", has_text=name).get_by_role("checkbox").check()
    fits(page)
    confirmation(page, page.get_by_role("button", name="Add to Group"), "Add 2 users to:")
    fits(page)
    panel = page.locator("#sidebar")
    panel.get_by_label("Reviewers").check()
    panel.get_by_label("Or a new group").fill("Night shift")
    shot(page, f"a-{size}-add-to-group-panel")
    panel.get_by_role("button", name="Add to Group").click()
    page.get_by_text("Added 2 users to “Reviewers” and “Night shift”").wait_for()
    assert panel.inner_html().strip() == ""
    assert page.locator("#rows tbody tr", has_text="Ana Alpha").get_by_text("Night shift").is_visible()
    fits(page)
    assert members_of(live_server, "Reviewers") == members_of(live_server, "Night shift") == {
        ana.id, bo.id}


@pytest.mark.parametrize("size", VIEWPORTS)
def test_people_are_found_and_added_on_the_group_page(size, page, live_server, account):
    ana = make_user(account, name="Ana Alpha")
    make_user(account, name="Bo Beta")
    red = make_group(account, "Red")
    make_taskstream(account, "Delivery", [("Load", red.id)])
    live_server.settle()
    page.set_viewport_size(VIEWPORTS[size])
    sign_in(page, account.admin.user.email, PASSWORD)
    page.goto(f"/admin/participants/groups/{red.id}")
    fits(page)
    page.get_by_label("Find people").fill("alp")
    page.locator("#picker_results").get_by_text("Ana Alpha").click()
    page.locator("[data-picked]").get_by_text("Ana Alpha").wait_for()
    fits(page)
    shot(page, f"b-{size}-group-page-picked")
    page.get_by_role("button", name="Add to Group").click()
    page.get_by_text("Added 1 user to “Red”.").wait_for()
    assert page.locator("table.members").get_by_text("Ana Alpha").is_visible()
    assert members_of(live_server, "Red") == {ana.id}
    fits(page)
    # The only member of a group assigned to a step cannot be removed: the page says why.
    dialog = confirmation(page, page.get_by_role("button", name="Remove Ana Alpha from Red"),
                          "Remove Ana Alpha from “Red”?")
    dialog.get_by_role("button", name="Remove").click()
    page.get_by_text("removing its only member").wait_for()
    assert members_of(live_server, "Red") == {ana.id}
    fits(page)
    shot(page, f"b-{size}-group-page-blocked")
    page.get_by_role("link", name="Go to “Load” in Delivery").click()
    page.wait_for_url("**/admin/taskstreams/*#step-*")


@pytest.mark.parametrize("size", VIEWPORTS)
def test_members_are_picked_while_creating_a_new_group(size, page, live_server, account):
    ana = make_user(account, name="Ana Alpha")
    bo = make_user(account, name="Bo Beta")
    live_server.settle()
    page.set_viewport_size(VIEWPORTS[size])
    sign_in(page, account.admin.user.email, PASSWORD)
    page.goto("/admin/participants/groups/")
    fits(page)
    panel = confirmation(page, page.get_by_role("link", name="New Group"), "New Group")
    expect(panel.get_by_label("Name")).to_be_focused()
    panel.get_by_label("Name").fill("Drivers")
    search = panel.get_by_label("Find people")
    search.fill("alp")
    panel.locator("#picker_results").get_by_text("Ana Alpha").click()
    search.fill("bet")
    panel.locator("#picker_results").get_by_text("Bo Beta").click()
    search.press("Enter")  # searches, does not submit
    assert panel.locator("[data-picked] input:checked").count() == 2
    fits(page)
    shot(page, f"c-{size}-new-group")
    panel.get_by_role("button", name="Create group").click()
    page.get_by_text("Created the group “Drivers” with 2 members.").wait_for()
    row = page.locator("#results tbody tr", has_text="Drivers")
    expect(row.get_by_role("gridcell", name="2", exact=True)).to_be_visible()  # a keyboard grid
    fits(page)
    shot(page, f"c-{size}-groups-list")
    assert members_of(live_server, "Drivers") == {ana.id, bo.id}


@pytest.mark.parametrize("size", VIEWPORTS)
def test_user_details_add_to_group_and_remove(size, page, live_server, account):
    ana = make_user(account, name="Ana Alpha")
    red = make_group(account, "Red")
    make_taskstream(account, "Delivery", [("Load", red.id)])
    live_server.settle()
    page.set_viewport_size(VIEWPORTS[size])
    sign_in(page, account.admin.user.email, PASSWORD)
    page.goto(f"/admin/participants/users/{ana.id}")
    fits(page)
    section = page.locator("#participates_in")
    panel = confirmation(page, section.get_by_role("link", name="Add to Group"), "Add 1 user to:")
    fits(page)
    panel.get_by_label("Red").check()
    panel.get_by_role("button", name="Add to Group").click()
    page.get_by_text("Added 1 user to “Red”.").wait_for()
    section.get_by_role("link", name="Delivery").wait_for()
    fits(page)
    shot(page, f"d-{size}-user-details")
    assert members_of(live_server, "Red") == {ana.id}
    make_group(account, "Spare", [ana])
    live_server.settle()
    page.reload()
    dialog = confirmation(page, section.get_by_role("button", name="Remove from Spare"),
                          "Remove Ana Alpha from “Spare”?")
    assert members_of(live_server, "Spare") == {ana.id}
    dialog.get_by_role("button", name="Remove").click()
    page.get_by_text("Removed Ana Alpha from “Spare”.").wait_for()
    assert members_of(live_server, "Spare") == set()
    fits(page)
