"""A person signs in through the real page and out again."""
import pytest

from tests.browser.conftest import sign_in
from tests.builders import PASSWORD

pytestmark = pytest.mark.browser


def test_admin_signs_in_sees_users_and_signs_out(page, account):
    email = account.admin.user.email
    sign_in(page, email, "not the password")
    assert page.get_by_text("The e-mail or password is wrong.").is_visible()
    sign_in(page, email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    assert page.get_by_role("gridcell", name=email).is_visible()  # the list is a keyboard grid
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert page.get_by_text("You are signed out.").is_visible()


def test_login_hint_prefills_the_email(page, account):
    page.goto("/login?login_hint=someone%40example.com")
    assert page.get_by_label("E-mail").input_value() == "someone@example.com"
