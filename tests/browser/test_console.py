"""The console-error fixture (issue 14, finding 6): any console error or uncaught exception of
any page a browser test opens fails that test (tests/browser/conftest.py: console_errors)."""
import pytest

from tests.browser import conftest

pytestmark = pytest.mark.browser


def test_console_errors_and_uncaught_exceptions_of_every_page_are_collected(page, new_page,
                                                                            console_errors):
    page.goto("/login")
    page.evaluate("() => console.error('a script went wrong')")
    other = new_page()  # another device's page is watched too
    other.goto("/forgot-password")
    with other.expect_event("pageerror"):
        other.evaluate("() => { setTimeout(() => { throw new Error('uncaught'); }); }")
    other.goto("/invite/not-a-token")  # answers 410 on purpose: not an error of the page
    assert any("a script went wrong" in error for error in console_errors)
    assert any("uncaught" in error for error in console_errors)
    assert len(console_errors) == 2, console_errors
    console_errors.clear()  # caught on purpose here; anywhere else they fail the test


def test_screenshots_for_people_leave_the_console_clean(page, console_errors, tmp_path_factory,
                                                        monkeypatch):
    """PORTAL_SCREENSHOTS (conftest.shot) on a page with inputs, whole and one element: hiding
    the caret would set an inline style the CSP refuses, failing whichever test took the shot."""
    shots = tmp_path_factory.mktemp("shots")
    monkeypatch.setattr(conftest, "SHOTS", str(shots))
    page.goto("/login")
    page.get_by_label("E-mail").focus()
    conftest.shot(page, "login")
    conftest.shot(page, "login-form", page.locator("form").first)
    page.evaluate("() => new Promise(requestAnimationFrame)")  # the console's messages are in
    assert sorted(p.name for p in shots.iterdir()) == ["login-form.png", "login.png"]
    assert console_errors == []
