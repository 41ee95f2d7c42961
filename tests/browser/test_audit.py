"""Admin → More → Audit trail in Chromium (issue 15, item 4): filter, page, export."""
import csv
import io
from pathlib import Path

import pytest

from portal.services import auth
from portal.services.errors import ServiceError
from tests.browser.conftest import fits
from tests.browser.conftest import shot
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_group
from tests.builders import make_user

pytestmark = pytest.mark.browser


# Every word of the table's cells whose letters sit on more than one line.
BROKEN_WORDS = """selector => {
    const broken = [];
    for (const cell of document.querySelectorAll(selector)) {
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (const match of node.data.matchAll(/\\S+/g)) {
                const range = document.createRange();
                range.setStart(node, match.index);
                range.setEnd(node, match.index + match[0].length);
                const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                if (tops.size > 1) { broken.push(match[0]); }
            }
        }
    }
    return broken;
}"""


def broken_words(page, selector: str) -> list[str]:
    return page.evaluate(BROKEN_WORDS, selector)


def test_an_admin_filters_the_audit_trail_pages_it_and_exports_it(page, live_server, account):
    ana = make_user(account, name="Ana Berg", email="ana@example.com")
    make_group(account, "Sales", members=[ana])
    for n in range(3):
        make_user(account, name=f"Person {n}")
    with pytest.raises(ServiceError):
        auth.authenticate("ana@example.com", "not her password")
    live_server.settle()

    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Audit trail").click()
    page.wait_for_url("**/admin/audit/")
    rows = page.locator("table.audit tbody tr")
    assert page.get_by_role("heading", name="Audit trail").is_visible()
    assert page.get_by_role("cell", name="group “Sales”").first.is_visible()
    shot(page, "audit-trail")
    assert not broken_words(page, "table.audit td"), "words broken across lines at 1280 px"
    fits(page)

    page.get_by_label("What").select_option("failures")
    page.get_by_label("Whom").fill("ana@example.com")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**what=failures**")
    rows.filter(has_text="login failed").first.wait_for()
    assert rows.count() == 1 and "Ana Berg" in rows.first.inner_text()
    shot(page, "audit-trail-filtered")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export to CSV").click()
    assert download.value.suggested_filename.startswith("audit-")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    exported = list(csv.reader(io.StringIO(text)))
    assert [r[2] for r in exported[1:]] == ["login.failed"]

    page.get_by_role("link", name="Clear").click()
    page.get_by_label("From").fill("2000-01-02")
    page.get_by_label("To").fill("2000-01-01")
    page.get_by_role("button", name="Filter").click()
    page.get_by_text("“To” is before “From”.").wait_for()
