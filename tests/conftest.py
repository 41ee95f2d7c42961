"""Fixtures: the app on a fresh database per test, a real SMTP server, clients and builders."""
import contextvars
import re
import threading
from pathlib import Path

import jinja2
import pytest
from flask import has_app_context
from flask.testing import FlaskClient
from werkzeug.routing.rules import Rule

from portal import create_app
from portal.extensions import db
from portal.extensions import sqlite_immediate_begin
from tests import builders
from tests import databases
from tests import smtp_server

TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test secret key",
    "BASE_URL": "http://portal.test",
    # Cheap hashing keeps the suite fast; a test of the real parameters sets them by marker.
    "ARGON2_TIME_COST": 1,
    "ARGON2_MEMORY_COST": 64,
    "ARGON2_PARALLELISM": 1,
    "RATELIMIT_ENABLED": False,
    "MAIL_DEFAULT_SENDER": "portal@portal.test",
    "SMTP_TIMEOUT": 2,
}


# Each test builds its own app (create_app), and with it two costs that are the same for every
# app of the run: compiling each URL rule's builder (werkzeug compiles Python code for each of
# ~100 rules: about 60 ms an app) and each template (Jinja: about 100 ms for the pages a test
# of the Users list renders). Both are kept for the run: the templates' compiled code in a
# Jinja bytecode cache (keyed by name and source checksum, Jinja's own API), the rules'
# builders by what the code is made of (the rule's parsed parts, its defaults). The code is
# the same either way (tests/test_suite_speed.py); only its compilation is saved.


class RunTemplateBytecode(jinja2.BytecodeCache):
    """Compiled templates kept in memory for the whole run (every test app shares them)."""

    def __init__(self):
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self.code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_BYTECODE = RunTemplateBytecode()
_compile_builder = Rule._compile_builder
_builders: dict[tuple, object] = {}


def builder_key(rule: Rule, append_unknown: bool) -> tuple:
    """What a rule's builder code is made of: its parsed parts and defaults (the converters
    are looked up on the rule when the builder runs)."""
    defaults = tuple(sorted((k, repr(v)) for k, v in (rule.defaults or {}).items()))
    return rule.rule, tuple(rule._trace), defaults, append_unknown


def _cached_compile_builder(self: Rule, append_unknown: bool = True):
    key = builder_key(self, append_unknown)
    builder = _builders.get(key)
    if builder is None:
        builder = _builders[key] = _compile_builder(self, append_unknown)
    return builder


Rule._compile_builder = _cached_compile_builder


# `make test TEST_WORKERS=2` runs the suite on two pytest-xdist workers (--dist loadgroup). Each
# has its own of everything a session fixture makes: SQLite template and files in its tmp dir,
# its own PostgreSQL database on the run's server (PostgresDatabases: a uuid name), SMTP server
# on a free port, Chromium, compiled-code caches (in memory). The tests that run processes of
# their own against the clock are one group on one worker, so two of them never share the two
# cores (the other worker still runs; their waits are generous for that: tests/deploy/processes).
ROOT = Path(__file__).resolve().parents[1]
TIMING_SENSITIVE = (
    "tests/cli/test_worker_signals.py",
    "tests/deploy/test_scale_out.py",
    "tests/deploy/test_serve.py",
    "tests/deploy/test_shared_rate_limits.py",
    "tests/services/test_device_limit_races.py",
    "tests/services/test_import_interrupted.py",
    "tests/services/test_outbox_sigkill.py",
)


def pytest_collection_modifyitems(items):
    for item in items:
        if item.nodeid.split("::", 1)[0] in TIMING_SENSITIVE:
            item.add_marker(pytest.mark.xdist_group("timing-sensitive"))


@pytest.fixture(scope="session")
def test_databases(tmp_path_factory):
    dbs = databases.from_environment(tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.close()


@pytest.fixture(scope="session")
def postgres_server():
    """PORTAL_TEST_DATABASE_URL's server, or (in the SQLite run) a cluster from .ci/pg.sh."""
    server = databases.PostgresServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_databases(request, test_databases):
    if isinstance(test_databases, databases.PostgresDatabases):
        yield test_databases
        return
    dbs = databases.PostgresDatabases(request.getfixturevalue("postgres_server").url)
    yield dbs
    dbs.close()


@pytest.fixture(scope="session")
def sqlite_databases(test_databases, tmp_path_factory):
    if isinstance(test_databases, databases.SQLiteDatabases):
        return test_databases
    return databases.SQLiteDatabases(tmp_path_factory.mktemp("sqlite"))


def databases_for(request):
    """The run's databases, or those ``@pytest.mark.database("sqlite" | "postgresql")`` names:
    a test of one database's own behaviour runs on it in both runs (never a skip)."""
    marker = request.node.get_closest_marker("database")
    if marker is None:
        return request.getfixturevalue("test_databases")
    [name] = marker.args
    return request.getfixturevalue({"sqlite": "sqlite_databases",
                                    "postgresql": "postgres_databases"}[name])


@pytest.fixture(scope="session")
def smtp_session():
    controller, handler = smtp_server.start()
    yield controller, handler
    controller.stop()


@pytest.fixture
def smtp(smtp_session):
    """The recording SMTP server, emptied for this test; ``smtp.refuse[addr] = "550 ..."``."""
    _controller, handler = smtp_session
    handler.reset()
    yield handler
    handler.reset()


def make_config(request, database_url: str, smtp_port: int, instance: str) -> dict:
    config = dict(TEST_CONFIG, DATABASE_URL=database_url, MAIL_SERVER="127.0.0.1",
                  MAIL_PORT=smtp_port)
    for marker in reversed(list(request.node.iter_markers("config"))):
        config.update(marker.kwargs)
    config["_INSTANCE"] = instance
    return config


@pytest.fixture
def app(request, smtp_session, tmp_path):
    """The app from the factory on a fresh database; ``@pytest.mark.config(...)`` overrides,
    ``@pytest.mark.database(...)`` picks the database whatever the run's is."""
    url = databases_for(request).fresh(tmp_path)
    config = make_config(request, url, smtp_session[0].port, str(tmp_path))
    app = create_app({k: v for k, v in config.items() if not k.startswith("_")})
    app.jinja_env.bytecode_cache = TEMPLATE_BYTECODE
    app.test_client_class = PortalClient
    # The test's own reads must not hold SQLite's write lock while the app serves requests.
    token = sqlite_immediate_begin.set(False)
    with app.app_context():
        yield app
        db.session.remove()
        finish_job_threads()
        db.engine.dispose()
    sqlite_immediate_begin.reset(token)


def finish_job_threads(seconds: float = 60) -> None:
    """Wait for the jobs this test started in threads (``jobs.run_here``): on PostgreSQL the
    next test truncates and reuses the same database, and a job still running would write
    into it (its ids restart at 1)."""
    for thread in threading.enumerate():
        if thread.name.startswith("job-") and thread.is_alive():
            thread.join(seconds)


class PortalClient(FlaskClient):
    """A test client that behaves like a browser talking to a separate server process.

    - Each request runs in its own app context (its own ``g`` and database session), not in
      the test's, so nothing leaks between the test's session and the request's.
    - The test's open transaction is ended first: SQLite writers take the lock at BEGIN
      (IMMEDIATE), so an idle read transaction in the test would block the request.
    - It sends the CSRF token with every state change, like the real pages; pass
      ``csrf=False`` to leave it out.
    """

    TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|"X-CSRFToken": "([^"]+)"')

    def csrf_token(self) -> str:
        html = self.get("/forgot-password").get_data(as_text=True)
        match = self.TOKEN.search(html)
        return match.group(1) or match.group(2)

    def open(self, *args, csrf: bool = True, **kwargs):
        method = kwargs.get("method", "GET").upper()
        if csrf and method in ("POST", "PUT", "PATCH", "DELETE"):
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRFToken", self.csrf_token())
            kwargs["headers"] = headers
        if has_app_context():
            db.session.commit()
        # A streamed body (CSV export) is read while its request is still open, as a server does.
        kwargs.setdefault("buffered", True)
        return contextvars.Context().run(super().open, *args, **kwargs)

    def login(self, email: str, password: str = builders.PASSWORD, **kwargs):
        return self.post("/login", data={"email": email, "password": password}, **kwargs)


@pytest.fixture
def client(app) -> PortalClient:
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def account(app):
    """An account with one admin who has a password (``account.admin``)."""
    return builders.make_account()


@pytest.fixture
def admin(app, account) -> PortalClient:
    """A client signed in as the account's admin; ``admin.actor`` is the membership."""
    client = app.test_client()
    response = client.login(account.admin.user.email)
    assert response.status_code == 302, response.get_data(as_text=True)
    client.actor = account.admin
    return client
