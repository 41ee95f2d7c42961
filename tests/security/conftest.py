"""The hostile tests' world: two accounts, Acme (the attacker's) and Beta (the target).

Every test of tests/security/ gets a fresh database (the root conftest's ``app``); the world
is built through the real services and HTTP, so it obeys the real rules. ``snapshot()``
reads every table but the audit trail, so "nothing changed" is one comparison.
"""
import io
import re
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Base
from portal.models import Device
from portal.models import Membership
from portal.models import OutboxMessage
from portal.services import saved_views
from tests import builders
from tests.builders import csv_bytes

HX = {"HX-Request": "true"}
USERS = "/admin/participants/users"
GROUPS = "/admin/participants/groups"
TASKSTREAMS = "/admin/taskstreams"
VIEWS = "/admin/participants/views"
# Tables a refused request may write to: the trail of what was refused.
WRITABLE_ON_REFUSAL = {"audit_events"}
CSRF = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+|("X-CSRFToken": ")[^"]+')


def without_tokens(html: str) -> str:
    """The page with its CSRF tokens blanked (they are signed with the time of the request)."""
    return CSRF.sub(lambda m: m.group(1) or m.group(2), html)


def sample_path(rule) -> str:
    """A URL of this route with 1 for every id (and the first choice of an ``any`` part)."""
    values = {}
    for arg in rule.arguments:
        items = getattr(rule._converters.get(arg), "items", None)
        values[arg] = sorted(items)[0] if items else "1"
    return rule.build(values, append_unknown=False)[1]


def link_in(text: str, prefix: str) -> str | None:
    """The first link path starting with ``prefix`` ("/reset-password/") in a page or mail."""
    match = re.search(re.escape(prefix) + r"[A-Za-z0-9_-]+", text)
    return match.group(0) if match else None


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every table but the audit trail, in a comparable order."""
    db.session.commit()
    rows = {}
    for table in Base.metadata.sorted_tables:
        if table.name in WRITABLE_ON_REFUSAL:
            continue
        rows[table.name] = sorted(
            (tuple(map(repr, row)) for row in db.session.execute(sa.select(table))),
        )
    return rows


def signed_in(app, email: str, password: str = builders.PASSWORD):
    client = app.test_client()
    response = client.login(email, password)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def choose(client, account_id: int):
    response = client.post("/choose-account", data={"account": account_id})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def join(account, user, role: str = "member") -> Membership:
    """Make an existing person a live member of another account.

    Through the service that adds people; an account may have to wait for the person's
    consent (an invitation), which is then taken as given here: the world needs the state
    after it, not the consent step (T35 in test_h_i_tokens_and_guessing.py covers that).
    """
    from portal.services import invitations

    membership = invitations.add_person(account.admin, name=user.name, email=user.email, role=role,
                                        group_ids=())
    return builders.accepted(membership)


def live_devices(user_id: int) -> list[Device]:
    db.session.commit()
    return list(db.session.scalars(
        sa.select(Device).where(Device.user_id == user_id, Device.revoked_at.is_(None))
        .order_by(Device.id)))


@dataclass
class World:
    app: object
    acme: object
    beta: object
    admin: object  # the Acme admin's client (the attacker)
    beta_admin: object  # the Beta admin's client
    bob: Membership  # Beta only, signed in on one device
    bob_device: Device
    carol: Membership  # Beta only, invited (an outbox message with her link)
    dave: Membership  # Beta only, deleted
    beta_group: object
    beta_taskstream: object
    beta_step: object
    beta_job: int
    beta_message: int
    beta_view: int  # a saved view of Beta's Users list
    x_acme: Membership  # X: a user of Acme ...
    x_beta: Membership  # ... and an admin of Beta

    def beta_ids(self) -> dict[str, int]:
        return {"bob": self.bob.id, "group": self.beta_group.id,
                "taskstream": self.beta_taskstream.id, "step": self.beta_step.id,
                "job": self.beta_job, "message": self.beta_message, "device": self.bob_device.id,
                "view": self.beta_view}


def build_world(app) -> World:
    acme = builders.make_account("Acme")
    beta = builders.make_account("Beta")
    bob = builders.make_user(beta, name="Bob Betaonly", email="bob@beta.example")
    carol = builders.make_user(beta, name="Carol Betainvited", email="carol@beta.example",
                               password=None)
    dave = builders.make_user(beta, name="Dave Betadeleted", email="dave@beta.example")
    builders.delete_users(beta, dave)
    group = builders.make_group(beta, "Beta Secret Group", [bob])
    taskstream = builders.make_taskstream(beta, "Beta Secret Stream", [("Beta step", group.id)])
    x_beta = builders.make_user(beta, name="Xavier Shared", email="x@shared.example", role="admin")
    x_acme = join(acme, x_beta.user)
    bob_device, _token = builders.make_device(bob.user, name="Bob's Beta phone", account=beta)
    beta_admin = signed_in(app, beta.admin.user.email)
    upload = beta_admin.post(f"{USERS}/import", data={"file": (io.BytesIO(csv_bytes(
        [("Eve Betaimport", "eve@beta.example", "")])), "people.csv")},
        content_type="multipart/form-data")
    assert upload.status_code == 302, upload.get_data(as_text=True)[:500]
    job = int(upload.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    message = db.session.scalar(sa.select(OutboxMessage.id)
                                .where(OutboxMessage.account_id == beta.id)
                                .order_by(OutboxMessage.id.desc()))
    view = saved_views.save_view(beta.admin, "users", "Beta Secret View", "q=bob%40beta.example")
    admin = signed_in(app, acme.admin.user.email)
    admin.actor = acme.admin
    return World(app=app, acme=acme, beta=beta, admin=admin, beta_admin=beta_admin, bob=bob,
                 bob_device=bob_device, carol=carol, dave=dave, beta_group=group,
                 beta_taskstream=taskstream, beta_step=taskstream.steps[0], beta_job=job,
                 beta_message=message, beta_view=view.id, x_acme=x_acme, x_beta=x_beta)


@pytest.fixture
def world(app, smtp) -> World:
    built = build_world(app)
    smtp.reset()
    return built
