"""Issue 14, finding 1: on a phone (390×844) no page scrolls sideways and a tap hits what it is drawn on."""
import os

import pytest

from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_group
from tests.builders import make_user

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
PAGES = ("/admin/participants/users/", "/admin/participants/users/{member}",
         "/admin/participants/groups/", "/admin/participants/groups/{group}",
         "/admin/taskstreams/", "/admin/settings/", "/admin/outbox/", "/account")

# Is the element drawn at the centre of each visible button that button (or inside it)?
MISSED_TAPS = """root => [...root.querySelectorAll('button, [role=button], a.button, input[type=submit]')]
  .filter(el => el.offsetParent !== null && el.getClientRects().length)
  .map(el => { el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();
               const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
               return hit && (hit === el || el.contains(hit)) ? null
                 : (el.textContent.trim() || el.value) + ' -> ' + (hit ? hit.outerHTML.slice(0, 80) : 'nothing'); })
  .filter(Boolean)"""

# What sticks out furthest to the right (said when a page is too wide).
WIDEST = """() => [...document.querySelectorAll('body *')]
  .filter(el => el.getBoundingClientRect().right > innerWidth
                && !el.closest('table'))
  .map(el => [el.getBoundingClientRect().right, el.tagName + '.' + el.className]).sort((a, b) => b[0] - a[0]).slice(0, 3)"""


def shot(page, name):
    if os.environ.get("PORTAL_SCREENSHOTS"):
        page.screenshot(path=f"/tmp/phone-{name}.png", full_page=True)


def test_no_page_scrolls_sideways_and_the_import_panel_takes_its_taps(page, live_server, account):
    team = make_group(account, "Night shift drivers of the northern depot")
    member = make_user(account, name="Maximiliana Wolfeschlegelsteinhausen-Bergerdorff",
                       email="maximiliana.wolfeschlegelsteinhausen@example.com", group_ids=[team.id])
    for n in range(3):
        make_user(account, name=f"Waiting Person {n}", password=None, group_ids=[team.id])
    live_server.settle()
    page.set_viewport_size(PHONE)
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    too_wide = {}
    for path in PAGES:
        page.goto(path.format(member=member.id, group=team.id))
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[path] = (width, page.evaluate(WIDEST))
        shot(page, path.strip("/").replace("/", "-").replace("{", "").replace("}", ""))

    page.goto("/admin/participants/users/")
    page.get_by_text("Import/Export").click()
    page.get_by_role("link", name="Import Users via CSV").click()
    panel = page.locator("#sidebar")
    panel.get_by_role("button", name="Preview").wait_for()
    shot(page, "import-panel")
    assert (too_wide, panel.evaluate(MISSED_TAPS)) == ({}, [])
