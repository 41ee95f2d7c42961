"""axe-core on every page and every open dialog: no serious or critical violation (issue 14).

One walk over two lists that are easy to extend: a new screen adds one line to PAGES (its
address, with ``{name}`` filled from the data the walk builds), a new panel, confirmation or
screen a flow reaches one line to DIALOGS (the page it starts on and how to open it). The counts
per page, moderate and minor included, go to test-artifacts/axe-pages.txt and axe-dialogs.txt.
"""
import re
from dataclasses import dataclass
from typing import Callable

import pytest
import sqlalchemy as sa
from playwright.sync_api import Error as PlaywrightError

from portal.extensions import db
from portal.models import OutboxMessage
from portal.services import auth as auth_service
from portal.services import outbox
from portal.services import saved_views
from tests.browser import axe
from tests.browser.conftest import ARTIFACTS
from tests.browser.conftest import shot
from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import csv_bytes
from tests.builders import delete_users
from tests.builders import make_device
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user

pytestmark = pytest.mark.browser

ANONYMOUS = "anonymous"
ADMIN = "admin"


@dataclass(frozen=True)
class Page:
    name: str
    path: str  # "{member}" and the like are filled from the walk's data
    who: str = ADMIN
    status: int = 200


PAGES = [
    Page("Sign in", "/login", ANONYMOUS),
    Page("Forgot password", "/forgot-password", ANONYMOUS),
    Page("Accept invitation", "{invite_path}", ANONYMOUS),
    Page("Set a new password", "{reset_path}", ANONYMOUS),
    Page("Link no longer valid", "/invite/not-a-token", ANONYMOUS, 410),
    Page("Users", "/admin/participants/users/"),
    Page("Users, nothing matches", "/admin/participants/users/?q=nobody-at-all"),
    Page("Users, invitations expired", "/admin/participants/users/?invitation=expired"),
    Page("New User", "/admin/participants/users/new"),
    Page("User details", "/admin/participants/users/{member}"),
    Page("User details, invited", "/admin/participants/users/{invited}"),
    Page("User details, edit", "/admin/participants/users/{member}/edit"),
    Page("Reset second factors", "/admin/participants/users/{member}/second-factors/reset"),
    Page("Import Users via CSV", "/admin/participants/users/import"),
    Page("Import history", "/admin/participants/users/imports"),
    Page("Deleted users", "/admin/participants/users/deleted"),
    Page("Groups", "/admin/participants/groups/"),
    Page("New Group", "/admin/participants/groups/new"),
    Page("Group", "/admin/participants/groups/{group}"),
    Page("Add to Group", "/admin/participants/groups/add-to-group?ids={member}"),
    Page("Taskstreams", "/admin/taskstreams/"),
    Page("Taskstream", "/admin/taskstreams/{taskstream}"),
    Page("Settings", "/admin/settings/"),
    Page("Provisioning", "/admin/settings/provisioning/"),
    Page("Outgoing mail", "/admin/outbox/"),
    Page("Outgoing mail, searched", "/admin/outbox/?q=ivy"),
    Page("Outgoing mail, one message", "/admin/outbox/{message}"),
    Page("Audit trail", "/admin/audit/"),
    Page("Audit trail, filtered", "/admin/audit/?what=failures&from=2020-01-01"),
    Page("Account", "/account"),
    Page("Change password", "/account/password"),
    Page("Second factors", "/account/security"),
    Page("Choose account", "/choose-account"),
]


def open_panel(page):
    """A side panel or a dialog is open: whichever the screen uses."""
    page.locator("dialog[open], #sidebar:not(:empty)").first.wait_for()


def tick(*names):
    def select(page):
        for name in names:
            page.get_by_label(f"Select {name}", exact=True).check()
    return select


def click(role, name, then=open_panel, before=None):
    def act(page):
        if before:
            before(page)
        page.get_by_role(role, name=name).first.click()
        if then:
            then(page)
    return act


def menu(name):
    def act(page):
        page.locator("summary", has_text=name).first.click()
        page.locator("details[open] a, [aria-expanded=true] + * a").first.wait_for()
    return act


# What axe checks of an open dialog or menu: the dialog alone (its page has its own line in
# PAGES, and a modal dialog is all a person can reach); a menu, the open menu.
DIALOG = "dialog[open]"
MENU = "details[open]"


@dataclass(frozen=True)
class Dialog:
    name: str
    path: str
    open: Callable
    within: str | None = DIALOG  # None: the whole page (a flow that reaches a new screen)


DIALOGS = [
    Dialog("Import/Export menu", "/admin/participants/users/", menu("Import/Export"), MENU),
    Dialog("New User", "/admin/participants/users/", click("link", "New User")),
    Dialog("New User, errors", "/admin/participants/users/",
           lambda page: (click("link", "New User")(page), page.get_by_role(
               "button", name="Add user").click(), page.locator(".error").first.wait_for())),
    Dialog("Import Users via CSV", "/admin/participants/users/",
           lambda page: (menu("Import/Export")(page),
                         click("link", "Import Users via CSV")(page))),
    Dialog("Resend Invite to two", "/admin/participants/users/",
           click("button", "Resend Invite", before=tick("Ivy Invited", "Ian Invited"))),
    Dialog("Add to Group", "/admin/participants/users/",
           click("button", "Add to Group", before=tick("Ada Active"))),
    Dialog("Delete", "/admin/participants/users/",
           click("button", "Delete", before=tick("Ada Active"))),
    Dialog("Log out a device", "/admin/participants/users/{member}",
           click("button", "Log out Laptop")),
    Dialog("Delete, from User details", "/admin/participants/users/{member}",
           click("button", "Delete", before=lambda page: page.locator(".danger-zone").wait_for())),
    Dialog("Remove from a group, User details", "/admin/participants/users/{member}",
           click("button", "Remove from Drivers")),
    Dialog("Copy invitation link", "/admin/participants/users/{invited}",
           click("button", "Copy invitation link")),
    Dialog("New Group", "/admin/participants/groups/", click("link", "New Group")),
    Dialog("Delete groups", "/admin/participants/groups/",
           click("button", "Delete", before=tick("Office"))),
    Dialog("Remove a member, Group", "/admin/participants/groups/{group}",
           click("button", "Remove Ada Active from Drivers")),
    Dialog("Delete a group", "/admin/participants/groups/{office}", click("button", "Delete")),
    Dialog("Remove a step", "/admin/taskstreams/{taskstream}",
           click("button", "Remove Check papers")),
    Dialog("Delete a taskstream", "/admin/taskstreams/{taskstream}", click("button", "Delete")),
    Dialog("Import preview", "/admin/participants/users/import", lambda page: (
        page.get_by_label("Browse CSV File").set_input_files(
            {"name": "people.csv", "mimeType": "text/csv",
             "buffer": csv_bytes([("Lin Import", "lin@example.com", "Office"),
                                  ("No Mail", "", "")])}),
        page.get_by_role("button", name="Preview").click(),
        page.wait_for_url("**/admin/participants/users/import/*"),
        page.get_by_role("button", name=re.compile("^Import all")).wait_for()), None),
    Dialog("Save view", "/admin/participants/users/?group={group}", lambda page: (
        page.locator("summary", has_text="Save view").click(),
        page.get_by_label("Name of this view").wait_for()), MENU),
    Dialog("Rename a saved view", "/admin/participants/users/", lambda page: (
        page.get_by_label("Rename or delete the view Drivers").click(),
        page.get_by_role("button", name="Rename").wait_for()), MENU),
    Dialog("Delete a saved view", "/admin/participants/users/", lambda page: (
        page.get_by_label("Rename or delete the view Drivers").click(),
        click("button", "Delete view")(page))),
    Dialog("Keyboard shortcuts", "/admin/participants/users/",
           lambda page: (page.keyboard.press("j"), page.keyboard.press("?"), open_panel(page))),
    # Last: it leaves the page at a phone's size (the top bar's Menu exists only there).
    Dialog("Menu on a phone", "/admin/participants/users/",
           lambda page: (page.set_viewport_size({"width": 390, "height": 844}),
                         menu("Menu")(page)), MENU),
]


def build(account, smtp) -> dict:
    """The data every page needs, through the real services; returns the ids and paths."""
    active = make_user(account, name="Ada Active", email="ada@example.com")
    invited = make_user(account, name="Ivy Invited", email="ivy@example.com", password=None)
    make_user(account, name="Ian Invited", email="ian@example.com", password=None)
    gone = make_user(account, name="Dee Deleted", email="dee@example.com")
    group = make_group(account, "Drivers", members=[active, invited])
    office = make_group(account, "Office")
    taskstream = make_taskstream(account, "Onboarding", [("Check papers", group.id),
                                                         ("Hand over keys", None)])
    make_device(active.user, name="Laptop")
    delete_users(account, gone)
    saved_views.save_view(account.admin, "users", "Drivers", f"group={group.id}")
    auth_service.mail_reset_link(active.user, account)
    db.session.commit()
    outbox.deliver_due(limit=50)
    links = {}
    for message in smtp.messages:
        found = re.search(r"http://portal\.test(/(invite|reset-password)/\S+)", message.text)
        if found:
            links[found.group(2)] = found.group(1)
    message = db.session.scalar(sa.select(OutboxMessage.id).order_by(OutboxMessage.id))
    db.session.commit()
    return {"member": active.id, "invited": invited.id, "group": group.id, "office": office.id,
            "taskstream": taskstream.id, "message": message,
            "invite_path": links["invite"], "reset_path": links["reset-password"]}


def slug(*words: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(words).lower()).strip("-")


IMPACTS = ("critical", "serious", "moderate", "minor")


def record(name: str, found: list[dict], counts: dict) -> None:
    """Count the rules broken per impact, and the elements breaking the blocking ones."""
    counts[name] = {impact: sum(1 for v in found if v["impact"] == impact) for impact in IMPACTS}
    counts[name]["elements"] = sum(len(v["nodes"]) for v in axe.blocking(found))
    counts[name]["report"] = axe.report(found)


def check(page, name: str, counts: dict, failures: list, *, prefix: str = "axe",
          path: str = "", within: str | None = None) -> None:
    """Run axe on what the page shows now (or on the element ``within`` selects): count it,
    keep a picture, note what fails."""
    where = f"{name} ({path})" if path else name
    if within and not page.locator(within).count():
        failures.append(f"{where}: nothing matches {within}")
        return
    found = axe.violations(page, within)
    shot(page, slug(prefix, name))
    record(name, found, counts)
    if axe.blocking(found):
        failures.append(f"{where}:\n{axe.report(axe.blocking(found))}")


def write_counts(counts: dict, filename: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    lines = [f"{'page or dialog':32} critical serious (elements) moderate minor"]
    lines += [f"{name:32} {c['critical']:8} {c['serious']:7} {c['elements']:10} {c['moderate']:8}"
              f" {c['minor']:5}" for name, c in counts.items()]
    details = [f"{name}:\n{c['report']}" for name, c in counts.items() if c["report"]]
    (ARTIFACTS / filename).write_text("\n".join(lines + [""] + details) + "\n")


def test_no_page_or_open_dialog_has_a_serious_or_critical_axe_violation(page, new_page,
                                                                        live_server, account,
                                                                        smtp):
    """One session for both walks (the data, the sign-in and the browser are shared)."""
    data = build(account, smtp)
    live_server.settle()
    visitor = new_page()
    axe.preload(page.context)
    axe.preload(visitor.context)
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    failures = []

    counts = {}
    for entry in PAGES:
        tab = visitor if entry.who == ANONYMOUS else page
        response = tab.goto(entry.path.format(**data))
        if response.status != entry.status:
            failures.append(f"{entry.name}: {entry.path} answered {response.status}")
            continue
        check(tab, entry.name, counts, failures, path=entry.path)
    write_counts(counts, "axe-pages.txt")

    counts = {}
    for entry in DIALOGS:
        page.goto(entry.path.format(**data))
        try:
            entry.open(page)
        except PlaywrightError as error:
            failures.append(f"{entry.name}: did not open: {error.message.splitlines()[0]}")
            continue
        check(page, entry.name, counts, failures, prefix="axe-dialog", within=entry.within)
    write_counts(counts, "axe-dialogs.txt")
    assert not failures, "serious or critical axe violations:\n" + "\n".join(failures)
