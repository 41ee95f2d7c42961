"""Scale-out, proven (issue 16, item 6): two gunicorn servers on two loopback ports and two
background workers (`flask worker`: jobs and the outbox) share one database, on PostgreSQL (a throw-away cluster
from .ci/pg.sh, or the suite's own server) and on SQLite (WAL, one host, four web workers).

Each run signs an admin in on one server and logs that device out from the other (the next
request on the first is signed out); queues 1,000 invitations and checks, with a real aiosmtpd
server, that each is sent exactly once; and runs 20 admins at once, spread over both servers,
creating, editing and deleting users for a bounded time: no 5xx, no lost update (all of them
also edit one shared user from the version they read: every save that succeeds is one version
more, the others are told the user changed), no "database is locked" in any log.

Bounded: the admins run for ADMIN_SECONDS (10 s), the rest is start-up and delivery; about
25 s a database on a quiet 2-core machine (100 s each under a load average of 14).
"""
import collections
import http.cookiejar
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db
from portal.extensions import sqlite_immediate_begin
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import User
from portal.services import invitations
from portal.services.users import Selection
from tests.builders import PASSWORD
from tests.builders import make_account
from tests.builders import make_user
from tests.conftest import TEST_CONFIG
from tests.databases import PostgresDatabases
from tests.databases import SQLiteDatabases
from tests.deploy.processes import ROOT
from tests.deploy.processes import free_port
from tests.deploy.processes import healthz
from tests.deploy.processes import stop_group
from tests.deploy.processes import wait_for
from tests.scim.bulk import add_people

ADMINS = 20
ADMIN_SECONDS = 10
INVITATIONS = 1000
USERS = "/admin/participants/users"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


# --- the database: a throw-away PostgreSQL cluster, or the suite's server; a SQLite file ----


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """(URL, web workers per server) of a fresh database with the schema."""
    if request.param == "sqlite":
        yield SQLiteDatabases(tmp_path).fresh(tmp_path), 2
        return
    # The suite's server, or the SQLite run's throw-away cluster (conftest's postgres_server).
    databases = PostgresDatabases(request.getfixturevalue("postgres_server").url)
    try:
        yield databases.url, 1
    finally:
        databases.close()


# --- the processes ------------------------------------------------------------------------


class Farm:
    """Two gunicorn servers and two workers on one database, their output in files."""

    def __init__(self, tmp_path, url: str, web_workers: int, smtp_port: int):
        self.ports = [free_port(), free_port()]
        self.logs = []
        self.processes = []
        env = dict(os.environ, PORTAL_DATABASE_URL=url, PORTAL_SECRET_KEY="one key for all",
                   PORTAL_BASE_URL="http://portal.test", PORTAL_MAIL_SERVER="127.0.0.1",
                   PORTAL_MAIL_PORT=str(smtp_port), PORTAL_ARGON2_TIME_COST="1",
                   PORTAL_ARGON2_MEMORY_COST="64", PORTAL_RATELIMIT_ENABLED="false",
                   WEB_CONCURRENCY=str(web_workers), GUNICORN_THREADS="4")
        commands = [[f"{sys.prefix}/bin/gunicorn", "--bind", f"127.0.0.1:{port}",
                     "--access-logfile", "/dev/null", "wsgi:app"] for port in self.ports]
        commands += [[f"{sys.prefix}/bin/flask", "--app", "wsgi", "worker", "--interval",
                      "0.5"]] * 2
        for n, command in enumerate(commands):
            log = tmp_path / f"process{n}.log"
            self.logs.append(log)
            with log.open("wb") as out:
                self.processes.append(subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True))
        try:
            for port in self.ports:
                wait_for(lambda p=port: healthz(p), 90, f"gunicorn on {port} answers",
                         self.output)
        except AssertionError:
            self.stop()
            raise

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs)

    def stop(self) -> None:
        for process in self.processes:
            stop_group(process)


# --- a browser ----------------------------------------------------------------------------


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer to look at, not to follow


class Browser:
    """One admin's cookies, talking to either server."""

    def __init__(self, ports: list[int]):
        self.ports = ports
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _Stay)
        self.csrf = None
        self.statuses: list[tuple[int, str]] = []

    def open(self, server: int, path: str, form: dict | None = None) -> tuple[int, str, str]:
        data = None
        if form is not None:
            data = urllib.parse.urlencode({"csrf_token": self.csrf, **form}, doseq=True).encode()
        url = f"http://127.0.0.1:{self.ports[server % 2]}{path}"
        try:
            with self.opener.open(url, data, timeout=60) as response:
                status, body, location = response.status, response.read().decode(), ""
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read().decode(errors="replace")
            location = error.headers.get("Location", "")
        self.statuses.append((status, f"{'POST' if form is not None else 'GET'} {path}"))
        return status, body, location

    def sign_in(self, server: int, email: str) -> None:
        _status, body, _ = self.open(server, "/login")
        self.csrf = CSRF.search(body)[1]
        status, _body, location = self.open(server, "/login",
                                            {"email": email, "password": PASSWORD})
        assert status == 302 and "/login" not in location, (status, location)
        _status, body, _ = self.open(server, f"{USERS}/")
        self.csrf = CSRF.search(body)[1]


# --- the checks ---------------------------------------------------------------------------


def sign_in_here_revoke_there(farm: Farm, admin_email: str, someone: tuple[int, str]) -> None:
    """Sign ``someone`` (id, e-mail) in on server 0; an admin logs that device out on server 1."""
    someone_id, someone_email = someone
    signed = Browser(farm.ports)
    signed.sign_in(0, someone_email)
    assert signed.open(0, f"{USERS}/")[0] == 200
    admin = Browser(farm.ports)
    admin.sign_in(1, admin_email)
    devices = admin.open(1, f"{USERS}/{someone_id}/devices")[1]
    ids = set(re.findall(rf"{USERS}/{someone_id}/devices/(\d+)/logout", devices))
    assert len(ids) == 1, devices
    status, _, _ = admin.open(1, f"{USERS}/{someone_id}/devices/{ids.pop()}/logout",
                              {"confirmed": "y"})
    assert status == 302
    status, _, location = signed.open(0, f"{USERS}/")
    assert status == 302 and "/login" in location, (status, location)


def queue_invitations(admin_id: int) -> list[str]:
    admin = db.session.get(Membership, admin_id)
    ids = add_people(admin.account, INVITATIONS, prefix="invitee")
    report = invitations.resend_invites(admin, Selection(ids=tuple(ids)))
    assert report.resent == INVITATIONS, report
    return [f"invitee.{n}@example.com" for n in range(INVITATIONS)]


class Shared:
    """The user every admin edits from the version it read; the saves that went through."""

    def __init__(self, membership_id: int):
        self.id = membership_id
        self.saved: list[str] = []
        self.lock = threading.Lock()


def _version(browser: Browser, server: int, membership_id: int) -> str | None:
    status, body, _ = browser.open(server, f"{USERS}/{membership_id}/edit")
    if status != 200:
        return None
    return re.search(r'name="version"[^>]*value="(\d+)"', body)[1]


def admin_at_work(browser: Browser, n: int, shared: Shared, until: float,
                  failures: list[str]) -> None:
    """Create, find, edit and delete users, and edit the shared one, until the time is up."""
    round_ = 0
    try:
        while time.monotonic() < until:
            round_ += 1
            here, there = round_ % 2, (round_ + 1) % 2
            email = f"made.{n}.{round_}@example.com"
            status, _, _ = browser.open(here, f"{USERS}/new", {
                "name": f"Made {n} {round_}", "email": email, "role": "member"})
            if status != 302:
                failures.append(f"admin {n}: New User answered {status}")
                continue
            found = browser.open(there, f"{USERS}/?" + urllib.parse.urlencode({"q": email}))[1]
            ids = re.findall(rf'href="{USERS}/(\d+)"', found)
            if len(set(ids)) != 1:
                failures.append(f"admin {n}: {email} listed as {sorted(set(ids))}")
                continue
            made = int(ids[0])
            version = _version(browser, here, made)
            status, _, _ = browser.open(there, f"{USERS}/{made}/edit", {
                "name": f"Edited {n} {round_}", "email": email, "version": version})
            if status != 302:
                failures.append(f"admin {n}: own edit answered {status}")
            name = f"Shared {n} {round_}"
            version = _version(browser, there, shared.id)
            status, _, _ = browser.open(here, f"{USERS}/{shared.id}/edit", {
                "name": name, "email": "shared@example.com", "version": version})
            if status == 302:
                with shared.lock:
                    shared.saved.append(name)
            elif status != 409:
                failures.append(f"admin {n}: shared edit answered {status}")
            status, _, _ = browser.open(there, f"{USERS}/bulk/delete",
                                        {"ids": made, "confirmed": "y"})
            if status != 302:
                failures.append(f"admin {n}: delete answered {status}")
    except Exception as error:  # noqa: BLE001 — a thread's failure is reported by the test
        failures.append(f"admin {n}: {error!r}")


@pytest.fixture
def test_app(database):
    """The test's own app on the shared database; its connections closed however the test ends
    (an unclosed sqlite3 connection is a ResourceWarning, an error under Python 3.13)."""
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=database[0]))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_two_servers_and_two_workers_share_one_database(database, test_app, tmp_path,
                                                        smtp_session, smtp):
    url, web_workers = database
    app = test_app
    # The test's own reads must not take SQLite's write lock from the servers (conftest's app).
    reads = sqlite_immediate_begin.set(False)
    with app.app_context():
        account = make_account()
        admin_id, admin_email = account.admin.id, account.admin.user.email
        admins = [make_user(account, role="admin", email=f"admin.{n}@example.com").user.email
                  for n in range(ADMINS)]
        someone = make_user(account, role="admin", email="signed.in@example.com").id, \
            "signed.in@example.com"
        shared = Shared(make_user(account, email="shared@example.com", name="Shared").id)
        first_version = db.session.get(Membership, shared.id).user.version
        db.session.query(OutboxMessage).delete()  # the set-up's own invitations
        db.session.commit()
        db.session.remove()
    farm = Farm(tmp_path, url, web_workers, smtp_session[0].port)
    try:
        sign_in_here_revoke_there(farm, admin_email, someone)
        browsers = [Browser(farm.ports) for _ in admins]
        for n, (browser, admin) in enumerate(zip(browsers, admins, strict=True)):
            browser.sign_in(n, admin)
        with app.app_context():
            writes = sqlite_immediate_begin.set(True)
            invitees = queue_invitations(admin_id)
            db.session.remove()
            sqlite_immediate_begin.reset(writes)
        failures: list[str] = []
        until = time.monotonic() + ADMIN_SECONDS
        threads = [threading.Thread(target=admin_at_work, args=(b, n, shared, until, failures))
                   for n, b in enumerate(browsers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(ADMIN_SECONDS + 60)

        def delivered():
            with app.app_context():
                waiting = db.session.scalar(sa.select(sa.func.count()).select_from(
                    OutboxMessage).where(OutboxMessage.state.in_(("pending", "sending"))))
                db.session.remove()
            return waiting == 0
        wait_for(delivered, 120, "the workers empty the outbox", farm.output)
    finally:
        farm.stop()
        sqlite_immediate_begin.reset(reads)

    output = farm.output()
    # What the processes said about an error: its exception and where in the portal it arose.
    told = [line for line in output.splitlines()
            if "Error" in line or "locked" in line or 'File "' in line and "/portal/" in line]
    statuses = collections.Counter(s for b in browsers for s, _ in b.statuses)
    errors = [what for b in browsers for s, what in b.statuses if s >= 500]
    assert errors == [] and failures == [], (statuses, errors, failures, told[-40:])
    assert statuses[302] > ADMINS * 4, statuses  # the admins did work, not only wait
    sent = collections.Counter(r.lower() for m in smtp.messages for r in m.recipients)
    assert {a: sent[a] for a in invitees if sent[a] != 1} == {}
    with app.app_context():
        user = db.session.get(Membership, shared.id).user
        assert user.version - first_version == len(shared.saved) > 0
        assert user.name in shared.saved
        made = db.session.scalar(sa.select(sa.func.count()).select_from(User)
                                 .where(User.email.like("made.%")))
        deleted = db.session.scalar(sa.select(sa.func.count()).select_from(Membership)
                                    .join(User, User.id == Membership.user_id)
                                    .where(User.email.like("made.%"),
                                           Membership.deleted_at.is_not(None)))
        assert made == deleted > 0
        db.session.remove()
    assert "database is locked" not in output and "Traceback" not in output, output[-3000:]
