"""What members see (issue 15, item 6), in Chromium: groups, taskstreams and steps, devices."""
import pytest

from tests.browser.conftest import shot
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_device
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user

pytestmark = pytest.mark.browser


def test_a_member_sees_what_they_take_part_in_and_logs_out_a_device(page, live_server, account):
    ana = make_user(account, name="Ana Lima", email="ana@example.com")
    drivers = make_group(account, "Drivers", members=[ana])
    make_taskstream(account, "Delivery round", [("Load the van", None), ("Drive", drivers.id)])
    make_device(ana.user, name="Ana's phone", kind="iphone")
    live_server.settle()

    sign_in(page, "ana@example.com", PASSWORD)
    page.wait_for_url("**/account")
    part = page.locator("#participation")
    assert part.get_by_text("Drivers", exact=True).is_visible()
    assert part.get_by_text("Delivery round").is_visible()
    assert part.locator(".own-steps li").all_inner_texts() == ["Drive (as Drivers)"]
    assert part.get_by_text("Load the van").count() == 0
    assert page.get_by_label("Name").input_value() == "Ana Lima"
    shot(page, "member-page")

    devices = page.locator("#devices")
    devices.get_by_role("button", name="Log out Ana's phone").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("button", name="Log out").click()
    devices.get_by_text("signed in").first.wait_for()
    page.locator("dialog[open]").wait_for(state="detached")
    assert devices.get_by_text("signed in").count() == 1
