"""Browser fixtures: the app served on a loopback port, Chromium driven by Playwright.

Debian's /usr/bin/chromium is used (Playwright's own browser download does not work here).
A failing test leaves a screenshot in test-artifacts/<test name>.png.

The test's database session must not sit in an open transaction while the browser acts
(SQLite writers lock at BEGIN): builders commit, and ``live_server.settle()`` ends a read.
"""
import contextvars
import os
import re
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from portal.extensions import db

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Playwright's expect() waits 5 s by default; on a loaded 2-core machine one htmx round trip
# has taken longer (a Restore at load 11). The same bound as the pages' own default timeout.
expect.set_options(timeout=10_000)
# PORTAL_SCREENSHOTS=dir keeps a picture of each screen for a person to look at.
SHOTS = os.environ.get("PORTAL_SCREENSHOTS")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # A fresh contextvars context: requests must not see the test's app context.
        self.thread = threading.Thread(
            target=contextvars.Context().run, args=(self.server.serve_forever,), daemon=True
        )

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)

    @staticmethod
    def settle():
        """End the test's read transaction so the server can write."""
        db.session.commit()


@pytest.fixture
def live_server(app):
    # The browser keeps the static files for the test instead of asking again on every page
    # (five conditional requests a page to the one-thread-per-request server: each test's
    # context starts with an empty cache, so a changed file is never missed).
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 3600
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


# The app answers 4xx on purpose (422 for a form with errors, 404, 410 for a used link); the
# browser logs each such answer as a console error, which is not a fault of the page.
EXPECTED = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")


def watch(page, errors: list) -> None:
    """Collect the page's uncaught exceptions and console errors (CSP refusals among them)."""
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    page.on("console", lambda msg: errors.append(f"{page.url}: {msg.text}")
            if msg.type == "error" and not EXPECTED.match(msg.text) else None)


@pytest.fixture
def console_errors():
    """Every console error and uncaught exception of the test's pages; any one fails the test."""
    errors = []
    yield errors
    assert not errors, "the page logged errors:\n" + "\n".join(errors)


@pytest.fixture
def page(request, browser, live_server, console_errors):
    """A fresh browser context and page; its base URL is the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    page = context.new_page()
    watch(page, console_errors)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True,
                        caret="initial")
    context.close()


@pytest.fixture
def new_page(browser, live_server, console_errors):
    """Open further pages in separate browser contexts (another device of the same person)."""
    contexts = []

    def make():
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        watch(page, console_errors)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def shot(page, name: str, locator=None) -> None:
    """With PORTAL_SCREENSHOTS set, keep a picture of this screen there: the full page, or only
    ``locator``'s element."""
    if SHOTS:
        # caret="initial" always: Playwright hides the caret by setting an inline style on each
        # input, which the CSP ('style-src 'self'') refuses and the page fixture counts as an error.
        path = os.path.join(SHOTS, f"{name}.png")
        if locator is None:
            page.screenshot(path=path, full_page=True, caret="initial")
        else:
            locator.screenshot(path=path, caret="initial")


def sign_in(page, email: str, password: str) -> None:
    """Sign in through the real page."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


# The two screens of issue 14: every admin flow is tried at both.
VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


def fits(page):
    """Nothing on the page scrolls sideways."""
    wide = page.evaluate("() => document.documentElement.scrollWidth")
    assert wide <= page.viewport_size["width"], f"{page.url} is {wide}px wide"


def confirmation(page, opener, question):
    """The question is a modal dialog with focus inside; Escape closes it, focus goes back."""
    opener.click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_text(question).first).to_be_visible()
    assert dialog.evaluate("d => d.matches(':modal') && d.contains(document.activeElement)")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()
    opener.click()
    expect(dialog.get_by_text(question).first).to_be_visible()
    return dialog
