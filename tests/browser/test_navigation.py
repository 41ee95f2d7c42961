"""Issue 14, finding 4: a side navigation on desktop, one Menu on phones, breadcrumbs that are
links, and exactly one h1 on every page."""
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user

pytestmark = pytest.mark.browser

AREAS = ("Users", "Groups", "Taskstreams", "Settings", "Outgoing mail", "Audit trail")
PAGES = ("/admin/participants/users/", "/admin/participants/users/{member}",
         "/admin/participants/users/deleted", "/admin/participants/users/imports",
         "/admin/participants/groups/", "/admin/participants/groups/{group}",
         "/admin/taskstreams/", "/admin/taskstreams/{stream}", "/admin/settings/",
         "/admin/outbox/", "/admin/audit/", "/account")

# Every breadcrumb names a page and links to it.
UNLINKED_CRUMBS = """() => [...document.querySelectorAll('.breadcrumbs li')]
  .filter(li => !li.querySelector('a[href]')).map(li => li.textContent.trim())"""


def test_every_area_is_one_click_away_on_desktop_and_on_a_phone(page, live_server, account):
    member = make_user(account, name="Ann Example")
    group = make_group(account, "Drivers", members=[member])
    stream = make_taskstream(account, "Delivery round", [("Load", group.id)])
    live_server.settle()
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")

    nav = page.get_by_role("navigation", name="Admin")
    for name in AREAS:
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Users")).to_have_attribute("aria-current", "page")
    shot(page, "nav-desktop-users")
    nav.get_by_role("link", name="Taskstreams").click()
    page.wait_for_url("**/admin/taskstreams/")
    expect(nav.get_by_role("link", name="Taskstreams")).to_have_attribute("aria-current", "page")

    problems = {}
    for path in PAGES:
        page.goto(path.format(member=member.id, group=group.id, stream=stream.id))
        h1s = page.locator("h1").count()
        unlinked = page.evaluate(UNLINKED_CRUMBS)
        if h1s != 1 or unlinked:
            problems[path] = (h1s, unlinked)
    assert problems == {}

    # A phone: the side navigation and the top bar's links fold into one Menu, Sign out in it.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/admin/participants/groups/")
    expect(page.get_by_role("navigation", name="Admin")).to_be_hidden()
    menu = page.locator("details.phone-menu")
    menu.locator("summary").click()
    body = page.get_by_role("navigation", name="Menu")
    for name in AREAS:
        expect(body.get_by_role("link", name=name, exact=True)).to_be_visible()
    sign_out = body.get_by_role("button", name="Sign out")
    expect(sign_out).to_be_in_viewport()
    shot(page, "nav-phone-menu")
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    expect(menu.locator("summary")).to_be_focused()
    menu.locator("summary").click()
    body.get_by_role("link", name="Settings").click()
    page.wait_for_url("**/admin/settings/")
