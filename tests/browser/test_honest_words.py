"""Issue 14, finding 7: words that are true. With no mail server, mail says it waits in Outgoing
mail; phones read in international format; "several organisations" only with several; Add to
Group marks the groups someone is in already."""
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import make_group
from tests.builders import make_user

pytestmark = [pytest.mark.browser, pytest.mark.config(MAIL_SERVER=None)]


def test_the_portal_says_what_is_true(page, live_server, account):
    drivers = make_group(account, "Drivers")
    make_group(account, "Office")
    ann = make_user(account, name="Ann Example", group_ids=[drivers.id])
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    wrong = []

    def check(what, locator):
        try:
            # The pages' own bound (10 s), not 3 s: at a load of 9 Add user took 4 s to answer.
            expect(locator).to_be_visible()
        except AssertionError:
            wrong.append(what)

    page.get_by_role("link", name="New User").click()
    panel = page.locator("#sidebar")
    panel.get_by_label("Full Name").fill("Grace Hopper")
    panel.get_by_label("Email").fill("grace@example.com")
    panel.get_by_label("Phone").fill("+442079460958")
    panel.get_by_role("button", name="Add user").click()
    check("New User without a mail server", page.get_by_text(
        "Added Grace Hopper; an e-mail to grace@example.com is queued in Outgoing mail"))

    page.get_by_role("link", name="Grace Hopper").click()
    check("phone in international format", page.get_by_text("+44 20 7946 0958", exact=True))

    page.goto(f"/admin/participants/users/{ann.id}")
    page.get_by_role("button", name="Reset Password").click()
    check("Reset Password without a mail server", page.get_by_text(
        "A link to reset the password to").filter(has_text="queued in Outgoing mail"))
    page.locator("#participates_in").get_by_role("link", name="Add to Group").click()
    check("Add to Group marks the groups they are in",
          panel.locator("label", has_text="Drivers").get_by_text("already in it"))
    expect(panel.locator("label", has_text="Office").get_by_text("already in it")).to_have_count(0)
    page.keyboard.press("Escape")

    page.goto("/choose-account")
    expect(page.get_by_role("heading", name="Choose an account")).to_be_visible()
    if page.get_by_text("You belong to several organisations").count():
        wrong.append("'several organisations' with one")
    assert wrong == []
