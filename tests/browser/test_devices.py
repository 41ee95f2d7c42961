"""A person signed in on two browsers; an admin logs one of them out from User Details."""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Device
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_user

pytestmark = pytest.mark.browser


def test_admin_logs_out_one_of_two_browsers_from_user_details(page, new_page, live_server, account):
    member = make_user(account, name="Ana Berg")
    email, admin_email = member.user.email, account.admin.user.email
    admin_name = account.admin.user.name
    live_server.settle()
    laptop, phone = new_page(), new_page()
    for browser in (laptop, phone):
        sign_in(browser, email, PASSWORD)
        browser.wait_for_url("**/account")
    live_server.settle()  # a fresh read: the phone signed in last
    phone_device = db.session.scalar(sa.select(sa.func.max(Device.id)).where(
        Device.user_id == member.user_id))
    live_server.settle()

    sign_in(page, admin_email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    page.goto(f"/admin/participants/users/{member.id}")
    devices = page.locator("#devices")
    assert devices.get_by_text("signed in").count() == 2
    rows = devices.locator("tbody tr")
    where = rows.evaluate_all(
        f"rows => rows.findIndex(r => r.querySelector(\"form[action$='/devices/{phone_device}/logout']\"))")
    devices.locator(f"form[action$='/devices/{phone_device}/logout'] button").click()
    # Issue 14: a text button, and a question first (a modal dialog); nothing ended yet.
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("button", name="Log out").wait_for()
    assert dialog.evaluate("d => d.matches(':modal')")
    assert devices.get_by_text("signed in").count() == 2
    dialog.get_by_role("button", name="Log out").click()
    devices.get_by_text(f"Logged out by {admin_name}").wait_for()
    page.locator("dialog[open]").wait_for(state="detached")
    assert devices.get_by_text("signed in").count() == 1
    assert page.get_by_text("is logged out.").is_visible()
    # Issue 14: the row stays where it was (a second click cannot land on another device).
    assert f"Logged out by {admin_name}" in rows.nth(where).inner_text()

    phone.reload()
    phone.wait_for_url("**/login**")
    assert phone.get_by_text(f"{admin_name} logged this device out.").is_visible()
    laptop.reload()
    assert laptop.url.endswith("/account")
    assert laptop.get_by_text("Your devices").is_visible()
