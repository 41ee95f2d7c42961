"""The console-error fixture (issue 14, finding 6): any console error or uncaught exception of
any page a browser test opens fails that test (tests/browser/conftest.py: console_errors)."""
import pytest

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
