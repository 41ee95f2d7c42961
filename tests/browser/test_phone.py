"""Issue 14, finding 1: on a phone (390×844) no page scrolls sideways and a tap hits what it is
drawn on: document.elementFromPoint at the centre of each visible button, on every main page and
in every open dialog, is that button."""
import pytest

from portal.services import csv_import
from tests.browser.conftest import shot
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import csv_bytes
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
PAGES = ("/admin/participants/users/", "/admin/participants/users/{member}",
         "/admin/participants/users/{member}/edit", "/admin/participants/users/deleted",
         "/admin/participants/users/imports", "/admin/participants/groups/",
         "/admin/participants/groups/{group}", "/admin/taskstreams/", "/admin/taskstreams/{stream}",
         "/admin/settings/", "/admin/outbox/", "/account")

# Is the element drawn at the centre of each visible button that button (or inside it)?
MISSED_TAPS = """root => [...root.querySelectorAll('button, [role=button], a.button, input[type=submit]')]
  .filter(el => el.checkVisibility() && el.getClientRects().length)
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


def tick(page, *names):
    for name in names:
        page.locator("#rows tbody tr", has_text=name).get_by_role("checkbox").check()


# Each dialog on a phone: where it opens, how, and the element whose buttons are checked.
DIALOGS = {
    "Import Users via CSV": ("/admin/participants/users/", lambda page: (
        page.get_by_text("Import/Export").click(),
        page.get_by_role("link", name="Import Users via CSV").click()), "#sidebar"),
    "New User": ("/admin/participants/users/",
                 lambda page: page.get_by_role("link", name="New User").click(), "#sidebar"),
    "Add to Group": ("/admin/participants/users/", lambda page: (
        tick(page, "Waiting Person 0"),
        page.get_by_role("button", name="Add to Group").click()), "#sidebar"),
    "Delete": ("/admin/participants/users/", lambda page: (
        tick(page, "Waiting Person 0"), page.get_by_role("button", name="Delete").click()),
        "dialog.confirm"),
    "Resend Invite to three": ("/admin/participants/users/", lambda page: (
        tick(page, "Waiting Person 0", "Waiting Person 1", "Waiting Person 2"),
        page.get_by_role("button", name="Resend Invite").click()), "dialog.confirm"),
    "Delete a group": ("/admin/participants/groups/{group}",
                       lambda page: page.get_by_role("button", name="Delete").click(),
                       "dialog.confirm"),
    "Menu": ("/admin/participants/users/",
             lambda page: page.locator("details.phone-menu summary").click(), "details.phone-menu"),
}


def test_no_page_scrolls_sideways_and_every_button_takes_its_tap(page, live_server, account):
    team = make_group(account, "Night shift drivers of the northern depot")
    member = make_user(account, name="Maximiliana Wolfeschlegelsteinhausen-Bergerdorff",
                       email="maximiliana.wolfeschlegelsteinhausen@example.com", group_ids=[team.id])
    for n in range(3):
        make_user(account, name=f"Waiting Person {n}", password=None, group_ids=[team.id])
    stream = make_taskstream(account, "Delivery round of the northern depot",
                             [("Load", make_group(account, "Loaders").id)])
    csv_import.import_csv(account.admin, csv_bytes([("Imported Person", "imported@example.com",
                                                     "")]), filename="new-starters-december.csv")
    live_server.settle()
    page.set_viewport_size(PHONE)
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    too_wide, missed = {}, {}
    for path in PAGES:
        page.goto(path.format(member=member.id, group=team.id, stream=stream.id))
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[path] = (width, page.evaluate(WIDEST))
        missed[path] = page.locator("body").evaluate(MISSED_TAPS)
        # Import history: one card per import, its links on screen (no table to scroll).
        for table in page.locator("table.import-history").all():
            inside = table.evaluate("t => [t.scrollWidth, t.clientWidth]")
            if inside[0] > inside[1]:
                too_wide[path + " (its table)"] = inside
        shot(page, "phone" + path.rstrip("/").replace("/", "-").replace("{", "").replace("}", ""))

    # Every dialog: drawn above the page (a sheet), each of its buttons takes its own tap.
    for name, (path, open_it, root) in DIALOGS.items():
        page.goto(path.format(group=team.id))
        open_it(page)
        dialog = page.locator(root)
        dialog.get_by_role("button").first.wait_for()
        missed[name] = dialog.evaluate(MISSED_TAPS)
        shot(page, "phone-dialog-" + name.lower().replace(" ", "-"))
    assert (too_wide, {k: v for k, v in missed.items() if v}) == ({}, {})
