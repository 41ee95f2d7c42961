"""The four ways to add users to groups, in the browser (all end in groups.add_to_groups)."""
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from portal.extensions import db
from portal.models import Group
from portal.models import GroupMember
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


def test_a_users_tab_selection_is_added_to_a_group_and_a_new_one(page, live_server, account):
    ana = make_user(account, name="Ana Alpha")
    bo = make_user(account, name="Bo Beta")
    make_user(account, name="Cy Gamma")
    make_group(account, "Reviewers")
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    for name in ("Ana Alpha", "Bo Beta"):
        page.locator("#rows tbody tr", has_text=name).get_by_role("checkbox").check()
    page.get_by_role("button", name="Add to Group").click()
    panel = page.locator("#sidebar")
    panel.get_by_text("Add 2 users to:").wait_for()
    panel.get_by_label("Reviewers").check()
    panel.get_by_label("Or a new group").fill("Night shift")
    shot(page, "a-add-to-group-panel")
    panel.get_by_role("button", name="Add to Group").click()
    page.get_by_text("Added 2 users to “Reviewers” and “Night shift”").wait_for()
    assert panel.inner_html().strip() == ""
    assert page.locator("#rows tbody tr", has_text="Ana Alpha").get_by_text("Night shift").is_visible()
    assert members_of(live_server, "Reviewers") == members_of(live_server, "Night shift") == {
        ana.id, bo.id}


def test_people_are_found_and_added_on_the_group_page(page, live_server, account):
    ana = make_user(account, name="Ana Alpha")
    make_user(account, name="Bo Beta")
    red = make_group(account, "Red")
    make_taskstream(account, "Delivery", [("Load", red.id)])
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.goto(f"/admin/participants/groups/{red.id}")
    page.get_by_label("Find people").fill("alp")
    page.locator("#picker_results").get_by_text("Ana Alpha").click()
    page.locator("[data-picked]").get_by_text("Ana Alpha").wait_for()
    shot(page, "b-group-page-picked")
    page.get_by_role("button", name="Add to Group").click()
    page.get_by_text("Added 1 user to “Red”.").wait_for()
    assert page.locator("table.members").get_by_text("Ana Alpha").is_visible()
    assert members_of(live_server, "Red") == {ana.id}
    # The only member of a group assigned to a step cannot be removed: the page says why.
    page.get_by_role("button", name="Remove Ana Alpha from Red").click()
    page.locator("dialog[open]").get_by_role("button", name="Remove").click()
    page.get_by_text("removing its only member").wait_for()
    shot(page, "b-group-page-blocked")
    page.get_by_role("link", name="Go to “Load” in Delivery").click()
    page.wait_for_url("**/admin/taskstreams/*#step-*")


def test_members_are_picked_while_creating_a_new_group(page, live_server, account):
    ana = make_user(account, name="Ana Alpha")
    bo = make_user(account, name="Bo Beta")
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.goto("/admin/participants/groups/")
    page.get_by_role("link", name="New Group").click()
    panel = page.locator("#sidebar")
    panel.get_by_label("Name").fill("Drivers")
    search = panel.get_by_label("Find people")
    search.fill("alp")
    panel.locator("#picker_results").get_by_text("Ana Alpha").click()
    search.fill("bet")
    panel.locator("#picker_results").get_by_text("Bo Beta").click()
    search.press("Enter")  # searches, does not submit
    assert panel.locator("[data-picked] input:checked").count() == 2
    shot(page, "c-new-group")
    panel.get_by_role("button", name="Create group").click()
    page.get_by_text("Created the group “Drivers” with 2 members.").wait_for()
    row = page.locator("#results tbody tr", has_text="Drivers")
    expect(row.get_by_role("gridcell", name="2", exact=True)).to_be_visible()  # a keyboard grid
    shot(page, "c-groups-list")
    assert members_of(live_server, "Drivers") == {ana.id, bo.id}


def test_user_details_add_to_group_and_remove(page, live_server, account):
    ana = make_user(account, name="Ana Alpha")
    red = make_group(account, "Red")
    make_taskstream(account, "Delivery", [("Load", red.id)])
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.goto(f"/admin/participants/users/{ana.id}")
    section = page.locator("#participates_in")
    section.get_by_role("link", name="Add to Group").click()
    panel = page.locator("#sidebar")
    panel.get_by_text("Add 1 user to:").wait_for()
    panel.get_by_label("Red").check()
    panel.get_by_role("button", name="Add to Group").click()
    page.get_by_text("Added 1 user to “Red”.").wait_for()
    section.get_by_role("link", name="Delivery").wait_for()
    shot(page, "d-user-details")
    assert members_of(live_server, "Red") == {ana.id}
    make_group(account, "Spare", [ana])
    live_server.settle()
    page.reload()
    section.get_by_role("button", name="Remove from Spare").click()
    page.locator("dialog[open]").get_by_text("Remove Ana Alpha from “Spare”?").wait_for()
    assert members_of(live_server, "Spare") == {ana.id}
    page.locator("dialog[open]").get_by_role("button", name="Remove").click()
    page.get_by_text("Removed Ana Alpha from “Spare”.").wait_for()
    assert members_of(live_server, "Spare") == set()
