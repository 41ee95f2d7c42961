"""No input answers 5xx: hostile Unicode into every parameter of every route, as an admin.

For each route and method of ``app.url_map`` (the JSON API has its own schemathesis test), the
test first asks the route once and records which parameters it reads: the request's query
string and form are a recording MultiDict, so the fields of its WTForms forms and anything a
view reads itself (``status``…) are found without a list to keep up to date; what a view reads
only on some paths (``next`` after a sign-in) is taken from its source. Then
hypothesis sends a few examples: in each, one parameter (or all of them) carries hostile text
(NUL, other control characters, lone surrogates sent as raw invalid UTF-8, text-direction
overrides, 10,000 characters, random Unicode), the others plausible values (real ids of the
admin's own objects, the fields' own choices), so a hostile value gets past the other fields to
the service. Path parameters are the admin's real ids; free-text ones (tokens, ids parsed by the
view) are fuzzed too. Any 5xx, or any exception, fails.

Bounded for the suite: a few derandomized examples per route, no example database; one app and
World for the whole module (routes that delete or sign out run last).
"""
import threading
import functools
import inspect
import os
import re
from datetime import timedelta
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask_wtf import FlaskForm
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.routing import IntegerConverter

from portal import create_app
from portal.extensions import db
from portal.extensions import sqlite_immediate_begin
from portal.models import Account
from portal.models import OutboxMessage
from portal.models import User
from portal.services import import_jobs
from portal.services import passwords
from portal.services import second_factors
from portal.services import tokens
from tests import builders
from tests.conftest import TEST_CONFIG
from tests.conftest import PortalClient

# A deeper search by hand: PORTAL_FUZZ_EXAMPLES=200 make test PYTEST_ARGS=tests/security/test_fuzz_inputs.py
EXAMPLES = int(os.environ.get("PORTAL_FUZZ_EXAMPLES", 6))

HOSTILE = [
    "a\x00b", "\x00", "\x00" * 3, "\ud800", "a\udfffb", "\u202eevil\u202c", "\u2066x\u2069",
    "x" * 10_000, "é" * 10_000, "line\r\nbreak", "\t", "\x1b[31m", "\x7f\x85\x9f",
    "' OR 1=1 --", '"', "%", "\\", "<script>alert(1)</script>", "=cmd|' /C calc'!A0",
    "-1", "0", "99999999999999999999999", "1e309", "NaN", " ", "",
]
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    # Every code point, lone surrogates included (hypothesis leaves them out unless asked).
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.builds(lambda s, n: (s or "\x00") * n, st.text(max_size=3), st.integers(1, 3_000)),
)
READ_IN_SOURCE = re.compile(r'request\.(?:args|form|values)(?:\.get(?:list)?\(|\[)"([^"]+)"')
BOOL_NAMES = ("all_matching", "confirmed", "invite", "include_deleted",
              "password_require_classes")


# Routes that take away what later routes act on run last (the world is shared by the module).
LAST = ("delete", "remove", "log_out", "logout")


def routes():
    app = create_app(dict(TEST_CONFIG, DATABASE_URL="sqlite://"))
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("api."):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            last = method != "GET" and any(word in rule.endpoint for word in LAST)
            found.append((last, method != "GET", rule.rule, method))
    return [pytest.param(rule, method, id=f"{method} {rule}") for *_, rule, method in sorted(found)]


class Recorded(ImmutableMultiDict):
    """A query string or form that notes every key the app asks it for."""

    asked: set[str] = set()

    def __contains__(self, key):
        Recorded.asked.add(key)
        return super().__contains__(key)

    def __getitem__(self, key):
        Recorded.asked.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None, type=None):  # noqa: A002 (MultiDict's signature)
        Recorded.asked.add(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):  # noqa: A002
        Recorded.asked.add(key)
        return super().getlist(key, type)


class World:
    """The admin's own objects, one of each kind, by id: path parameters and plausible values."""

    def __init__(self, app, account):
        self.app, self.account_id = app, account.id
        self.admin_email, self.admin_user_id = account.admin.user.email, account.admin.user_id
        member = builders.make_user(account, name="Fuzz Member")
        invited = builders.make_user(account, name="Fuzz Invited", password=None)
        gone = builders.make_user(account, name="Fuzz Deleted")
        group = builders.make_group(account, "Fuzz Group", [member])
        taskstream = builders.make_taskstream(
            account, "Fuzz Stream", [("First", group.id), ("Second", None)])
        job = import_jobs.upload(account.admin, "people.csv", builders.csv_bytes(
            [("Csv Person", "csv.person@example.com", "Fuzz Group")]))
        member_device, _ = builders.make_device(member.user)
        own_device, _ = builders.make_device(account.admin.user, name="Other laptop")
        factor = second_factors.start_totp(account.admin.user)  # unconfirmed: no second step
        self.tokens = {
            "auth.accept_invite": tokens.issue(invited.user, "invite", timedelta(hours=1),
                                               account_id=account.id),
            "auth.reset_password": tokens.issue(member.user, "reset", timedelta(hours=1)),
        }
        builders.delete_users(account, gone)
        db.session.commit()
        self.path_ids = {
            "membership_id": member.id, "group_id": group.id, "taskstream_id": taskstream.id,
            "step_id": taskstream.steps[0].id, "job_id": job.id, "device_id": member_device.id,
            "factor_id": factor.factor_id,
            "message_id": db.session.scalar(sa.select(sa.func.max(OutboxMessage.id)).where(
                OutboxMessage.account_id == account.id)),
        }
        self.own_device_id = own_device.id
        self.ids = sorted({str(i) for i in (
            *self.path_ids.values(), invited.id, gone.id, account.id)})

    def path_value(self, endpoint: str, arg: str) -> str:
        if arg == "token":
            return self.tokens[endpoint]
        if endpoint == "devices.log_out_own":
            return str(self.own_device_id)
        # A route with a kind of id not made above still gets its parameters fuzzed (on a 404).
        return str(self.path_ids.get(arg, 1))


@functools.cache
def field_choices() -> dict[str, list[str]]:
    """Return name -> the values its WTForms fields offer (choices, defaults), over every form."""
    found: dict[str, list[str]] = {}

    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    for form in walk(FlaskForm):
        for name in dir(form):
            unbound = getattr(form, name, None)
            kwargs = getattr(unbound, "kwargs", None)
            if kwargs is None or not hasattr(unbound, "field_class"):
                continue
            values = found.setdefault(name, [])
            for choice in kwargs.get("choices") or ():
                values.append(str(choice.value if hasattr(choice, "value") else choice[0]))
            if kwargs.get("default") not in (None, ""):
                values.append(str(kwargs["default"]))
    return found



def plausible(name: str, world: World) -> list[str]:
    """Values that pass a field's own checks, so the hostile one in another field goes deeper."""
    if name in BOOL_NAMES:
        return ["y", ""]
    by_name = {
        "name": ["Fuzz Renamed"], "new_group": ["Fuzz New Group"],
        # The admin's own e-mail and password let a sign-in succeed (and read ``next``).
        "email": ["fuzz.person@example.com", world.admin_email],
        "phone": ["+44 20 7946 0958", ""],
        "password": [builders.PASSWORD, builders.PASSWORD + " fuzz"],
        "confirm": [builders.PASSWORD + " fuzz"],
        "current_password": [builders.PASSWORD], "next": ["/account"],
        "direction": ["up", "down"], "origin": ["", "detail"],
        "sender_name": ["Fuzz Sender"], "q": ["fuzz"], "mq": ["fuzz"],
    }
    return by_name.get(name) or field_choices().get(name) or ["", "1", *world.ids]


def encode(pairs) -> str:
    """URL-encode as a browser would, lone surrogates as the raw invalid bytes an attacker sends."""
    return "&".join(
        quote(key, safe="") + "=" + quote(value.encode("utf-8", "surrogatepass"), safe="")
        for key, value in pairs
    )


@pytest.fixture(scope="module")
def world(test_databases, smtp_session, tmp_path_factory):
    """One app, database and World for the whole module: building them per route costs more
    than all the examples (the conftest ``app`` fixture, made module-wide)."""
    url = test_databases.fresh(tmp_path_factory.mktemp("fuzz"))
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=url, MAIL_SERVER="127.0.0.1",
                          MAIL_PORT=smtp_session[0].port))
    app.test_client_class = PortalClient
    app.request_class = type("RecordingRequest", (app.request_class,),
                             {"parameter_storage_class": Recorded})
    token = sqlite_immediate_begin.set(False)
    with app.app_context():
        yield World(app, builders.make_account())
        db.session.remove()
        db.engine.dispose()
    sqlite_immediate_begin.reset(token)


@pytest.mark.parametrize(("rule", "method"), routes())
def test_hostile_input_never_answers_a_server_error(world, rule, method):
    app = world.app
    client = app.test_client()

    def sign_in():
        # A CSV import started by an earlier example writes from its own thread: let it finish
        # first, or the shared SQLite file is locked under this session's read-then-write.
        for thread in threading.enumerate():
            if thread.name.startswith("job-"):
                thread.join(timeout=120)
        db.session.rollback()
        # Earlier examples may have changed the admin's password or the account's policy.
        account = db.session.get(Account, world.account_id)
        account.password_min_length, account.password_require_classes = 12, False
        account.second_factor_rule = "off"
        passwords.store_password(db.session.get(User, world.admin_user_id), builders.PASSWORD)
        db.session.commit()
        assert client.login(world.admin_email).status_code == 302
        return client.csrf_token()

    csrf = sign_in()
    url_rule = next(r for r in app.url_map.iter_rules() if r.rule == rule)
    path_args = sorted(url_rule.arguments)
    free_args = [a for a in path_args
                 if not isinstance(url_rule._converters[a], IntegerConverter)]

    def send(path_values: dict[str, str], params: list[tuple[str, str]]):
        path = rule
        for arg, value in path_values.items():
            converter = url_rule._converters[arg]
            text = quote(value.encode("utf-8", "surrogatepass"), safe="")
            path = path.replace(f"<{converter_name(converter)}{arg}>", text)
        if method == "GET":
            return client.get(path, query_string=encode(params))
        body = encode([("csrf_token", csrf), *params]).encode()
        return client.open(path, method=method, data=body, csrf=False,
                           content_type="application/x-www-form-urlencoded")

    real = {arg: world.path_value(url_rule.endpoint, arg) for arg in path_args}
    Recorded.asked = set()
    send(real, [("_probe", "1")])
    # What the view reads only on some paths (``next`` after a sign-in) is named in its source.
    Recorded.asked |= set(READ_IN_SOURCE.findall(inspect.getsource(
        inspect.unwrap(app.view_functions[url_rule.endpoint]))))
    # A route that reads nothing still gets a parameter it does not expect.
    names = sorted(Recorded.asked - {"_probe", "csrf_token"}) or ["unexpected"]
    targets = names + [f"path:{a}" for a in free_args]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def example(data):
        nonlocal csrf
        target = data.draw(st.sampled_from([*targets, "*every*"]), label="hostile in")
        params = []
        for name in names:
            hostile = target in (name, "*every*")
            strategy = hostile_text if hostile else st.sampled_from(plausible(name, world))
            params.append((name, data.draw(strategy, label=name)))
        path_values = dict(real)
        for arg in free_args:
            if target in (f"path:{arg}", "*every*"):
                path_values[arg] = data.draw(hostile_text.filter(bool), label=arg)
        response = send(path_values, params)
        assert response.status_code < 500, (method, rule, params, path_values)
        if response.status_code == 302 and "/login" in response.headers.get("Location", ""):
            csrf = sign_in()  # Sign out (or a password change) ended the session: back in.

    example()


def converter_name(converter) -> str:
    """Return the converter prefix as written in the rule ("int:" or "")."""
    return "int:" if isinstance(converter, IntegerConverter) else ""
