"""H. Invite and reset tokens, I. enumeration and brute force (SECURITY-CHECKLIST T31–T34,
T35–T39).

Links are taken from the e-mails as the recipient gets them (the outbox delivered to the test
SMTP server), never from the database.
"""
import hashlib
import io
import logging
import random
import re
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import ActionToken
from portal.models import AuditEvent
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import User
from portal.models import utcnow
from portal.services import outbox
from tests import builders
from tests.builders import csv_bytes
from tests.security.conftest import USERS
from tests.security.conftest import link_in
from tests.security.conftest import live_devices
from tests.security.conftest import signed_in
from tests.security.conftest import snapshot
from tests.security.conftest import without_tokens

NEW = "violet tractor quantum harbour 7"
OTHER = "crimson glacier lantern oboe 42"


def new_password(password: str = NEW) -> dict:
    return {"password": password, "confirm": password}


def mailed_link(smtp, email: str, prefix: str) -> str:
    outbox.deliver_all_due()
    links = [link_in(m.text, prefix) for m in smtp.to(email)]
    links = [link for link in links if link]
    assert links, f"no {prefix} link mailed to {email}"
    return links[-1]


def forgot(client, email: str):
    return client.post("/forgot-password", data={"email": email})


def test_t31_links_work_once_and_only_the_newest(app, account, smtp):
    email = account.admin.user.email
    client = app.test_client()
    forgot(client, email)
    older = mailed_link(smtp, email, "/reset-password/")
    forgot(client, email)
    newer = mailed_link(smtp, email, "/reset-password/")
    assert older != newer
    assert client.post(older, data=new_password()).status_code == 410  # superseded
    assert client.post(newer, data=new_password()).status_code == 302
    assert client.post(newer, data=new_password(OTHER)).status_code == 410  # used
    assert client.login(email, NEW).status_code == 302
    # A link issued before the password changed some other way dies with the old password.
    forgot(app.test_client(), email)
    stale = mailed_link(smtp, email, "/reset-password/")
    signed = signed_in(app, email, NEW)
    changed = signed.post("/account/password", data={"current_password": NEW,
                                                     **new_password(OTHER)})
    assert changed.status_code == 302
    assert app.test_client().post(stale, data=new_password("saffron kettle meteor 19 dune")
                                  ).status_code == 410
    # Invitations: once, and only the newest after Resend Invite.
    invited = builders.make_user(account, email="invitee@example.com", password=None)
    first = mailed_link(smtp, "invitee@example.com", "/invite/")
    admin = signed_in(app, email, OTHER)  # the password changed on /account/password
    # Resend Invite waits a few minutes between invitations (INVITE_RESEND_MINUTES): later.
    db.session.execute(sa.update(ActionToken).where(ActionToken.purpose == "invite").values(
        created_at=utcnow() - timedelta(minutes=app.config["INVITE_RESEND_MINUTES"] + 1)))
    db.session.commit()
    admin.post(f"{USERS}/{invited.id}/resend-invite")
    second = mailed_link(smtp, "invitee@example.com", "/invite/")
    assert first != second
    guest = app.test_client()
    assert guest.post(first, data=new_password()).status_code == 410
    assert guest.post(second, data=new_password()).status_code == 302
    assert guest.post(second, data=new_password(OTHER)).status_code == 410


def test_t32_links_expire_with_a_way_to_ask_again(app, account, smtp):
    assert app.config["RESET_VALID_MINUTES"] <= 60
    email = account.admin.user.email
    forgot(app.test_client(), email)
    reset = mailed_link(smtp, email, "/reset-password/")
    invited = builders.make_user(account, email="invitee@example.com", password=None)
    invite = mailed_link(smtp, "invitee@example.com", "/invite/")
    tokens = {t.purpose: t for t in db.session.scalars(sa.select(ActionToken))}
    assert tokens["reset"].expires_at - tokens["reset"].created_at <= timedelta(minutes=60)
    assert tokens["invite"].expires_at - tokens["invite"].created_at <= timedelta(hours=72)
    # TTL + 1 s: the clock has passed the expiry by a second.
    db.session.execute(sa.update(ActionToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    for link in (reset, invite):
        response = app.test_client().post(link, data=new_password())
        assert response.status_code == 410
        html = response.get_data(as_text=True)
        assert "/forgot-password" in html or "Resend" in html or "new link" in html.lower()
    assert invited.user.password_hash is None


def test_t33_tokens_are_random_hashed_bound_and_never_logged(app, account, smtp, caplog):
    caplog.set_level(logging.DEBUG)
    email = account.admin.user.email
    forgot(app.test_client(), email)
    reset = mailed_link(smtp, email, "/reset-password/")
    raw = reset.rsplit("/", 1)[1]
    assert len(raw) >= 43  # 32 bytes of secrets.token_urlsafe: 256 bits
    stored = db.session.scalar(sa.select(ActionToken.token_hash).where(
        ActionToken.purpose == "reset"))
    assert stored == hashlib.sha256(raw.encode()).hexdigest()
    assert not any(raw in str(rows) for rows in snapshot().values())
    events = db.session.scalars(sa.select(AuditEvent.details)).all()
    assert not any(raw in str(details) for details in events)
    assert not any(raw in record.getMessage() for record in caplog.records
                   if not record.name.startswith("mail.log"))  # (the test SMTP server's own)
    # Bound to its purpose: an invitation token is no reset token, nor the reverse.
    builders.make_user(account, email="invitee@example.com", password=None)
    invite = mailed_link(smtp, "invitee@example.com", "/invite/")
    invite_raw = invite.rsplit("/", 1)[1]
    assert app.test_client().post(f"/reset-password/{invite_raw}",
                                  data=new_password()).status_code == 410
    assert app.test_client().get(f"/invite/{raw}").status_code == 410


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_t33_guessing_tokens_is_rate_limited(app):
    client = app.test_client()
    answers = [client.post(f"/reset-password/{n:043d}", data=new_password()).status_code
               for n in range(25)]
    assert set(answers[:20]) == {410} and answers[-1] == 429
    answers = [client.post(f"/invite/{n:043d}", data=new_password()).status_code
               for n in range(25)]
    assert answers[-1] == 429


def test_t34_a_reset_ends_every_session_logs_nobody_in_and_tells_the_person(app, account, smtp):
    member = builders.make_user(account, email="person@example.com")
    web = [signed_in(app, member.user.email) for _ in range(2)]
    api = app.test_client().post("/api/v1/sessions", json={
        "email": member.user.email, "password": builders.PASSWORD, "device_id": "d3",
        "device_name": "Phone", "kind": "iphone", "app_version": "1"}).json["token"]
    assert len(live_devices(member.user_id)) == 3
    forgot(app.test_client(), member.user.email)
    link = mailed_link(smtp, member.user.email, "/reset-password/")
    browser = app.test_client()
    response = browser.post(link, data=new_password())
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert browser.get("/account").status_code == 302  # not signed in by the reset
    assert live_devices(member.user_id) == []
    for client in web:
        assert client.get("/account").status_code == 302
    assert app.test_client().get("/api/v1/me", headers={
        "Authorization": f"Bearer {api}"}).status_code == 401
    outbox.deliver_all_due()
    subjects = [m.subject.lower() for m in smtp.to(member.user.email)]
    assert any("password" in s and "changed" in s for s in subjects), subjects


def login_answer(client, email: str, password: str = "wrong password here"):
    response = client.post("/login", data={"email": email, "password": password})
    return response.status_code, without_tokens(response.get_data(as_text=True)), sorted(
        (k, v) for k, v in response.headers.items() if k not in ("Set-Cookie", "Content-Length"))


def test_t36_login_api_and_forgot_answer_the_same_for_every_kind_of_address(app, account):
    existing = builders.make_user(account, email="existing@example.com")
    deleted = builders.make_user(account, email="deleted@example.com")
    builders.delete_users(account, deleted)
    locked = builders.make_user(account, email="locked@example.com")
    db.session.execute(sa.update(User).where(User.id == locked.user_id).values(
        failed_logins=20, throttled_until=utcnow() + timedelta(minutes=15)))
    db.session.commit()
    emails = ("existing@example.com", "missing@example.com", "deleted@example.com",
              "locked@example.com")
    client = app.test_client()
    web = {email: login_answer(client, email) for email in emails}
    assert len({(s, b.replace(e, "")) for e, (s, b, _h) in web.items()}) == 1, web.keys()
    assert len({str(h) for (_s, _b, h) in web.values()}) == 1
    api = {email: app.test_client().post("/api/v1/sessions", json={
        "email": email, "password": "wrong password here", "device_id": "d",
        "device_name": "P", "kind": "iphone", "app_version": "1"}) for email in emails}
    assert len({(r.status_code, r.get_data()) for r in api.values()}) == 1
    pages = {}
    for email in emails:
        response = client.post("/forgot-password", data={"email": email})
        pages[email] = (response.status_code, response.headers.get("Location"))
    assert len(set(pages.values())) == 1
    assert existing.user.failed_logins >= 0


def test_t37_guessing_one_account_is_throttled_per_account_on_every_path(app, account):
    member = builders.make_user(account, email="target@example.com")
    for n in range(12):
        address = f"10.0.{n}.{random.randint(1, 250)}"
        app.test_client().post("/login", data={"email": "target@example.com",
                                               "password": f"wrong {n} guess"},
                               headers={"X-Forwarded-For": address},
                               environ_base={"REMOTE_ADDR": address})
    db.session.refresh(member.user)
    assert member.user.failed_logins == 12
    assert member.user.throttled_until is not None and member.user.throttled_until > utcnow()
    # (d) The right password while throttled: the same generic failure, on both paths.
    wrong = login_answer(app.test_client(), "target@example.com")
    right = login_answer(app.test_client(), "target@example.com", builders.PASSWORD)
    assert right[:2] == wrong[:2]
    api = app.test_client().post("/api/v1/sessions", json={
        "email": "target@example.com", "password": builders.PASSWORD, "device_id": "d",
        "device_name": "P", "kind": "iphone", "app_version": "1"})
    assert api.status_code == 401
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "login.throttled", AuditEvent.subject_user_id == member.user_id)) >= 1
    # No permanent lockout: once the wait is over the right password works.
    db.session.execute(sa.update(User).where(User.id == member.user_id).values(
        throttled_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert app.test_client().login("target@example.com").status_code == 302
    assert app.config["LOGIN_THROTTLE_AFTER"] <= 10


def test_t37_parallel_wrong_passwords_each_count_once_across_web_and_api(app, account):
    member = builders.make_user(account, email="target@example.com")
    email = member.user.email
    tokens = [app.test_client() for _ in range(10)]
    prepared = [(c, c.csrf_token()) for c in tokens]

    def web(client, token):
        client.post("/login", headers={"X-CSRFToken": token}, csrf=False,
                    data={"email": email, "password": "wrong password here"})

    def api():
        app.test_client().post("/api/v1/sessions", json={
            "email": email, "password": "wrong password here", "device_id": "d",
            "device_name": "P", "kind": "iphone", "app_version": "1"})

    threads = [threading.Thread(target=web, args=pair) for pair in prepared]
    threads += [threading.Thread(target=api) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    db.session.commit()
    assert db.session.scalar(sa.select(User.failed_logins).where(User.email == email)) == 20


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_t38_a_spoofed_forwarded_for_does_not_escape_the_per_address_limit(app):
    client = app.test_client()
    answers = []
    for n in range(32):
        response = client.post("/login", data={"email": f"nobody{n}@example.com",
                                               "password": "wrong password here"},
                               headers={"X-Forwarded-For": f"203.0.113.{n}",
                                        "X-Real-IP": f"198.51.100.{n}"})
        answers.append(response.status_code)
    assert 429 in answers and answers.index(429) <= 30


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_t39_a_forgot_password_flood_sends_at_most_three_mails_and_is_throttled(
        app, account, smtp):
    email = account.admin.user.email
    client = app.test_client()
    answers = []
    for _ in range(10):
        response = client.post("/forgot-password", data={"email": email})
        answers.append((response.status_code, response.headers.get("Location")))
        outbox.deliver_all_due()
    assert len(set(answers)) == 1  # identical, mail or not
    assert len(smtp.to(email)) == 3
    flood = [client.post("/forgot-password", data={"email": f"p{n}@example.com"}).status_code
             for n in range(5)]
    assert flood[-1] == 429
    started = time.process_time()  # CPU time: the wall clock counts other processes' too
    assert client.post("/forgot-password", data={"email": email}).status_code == 429
    assert time.process_time() - started < 1


def _added(world, name: str, email: str, headers: dict):
    """New User in Acme as its admin: the response, the membership and its e-mail."""
    # A plain POST redirects: its answer is the page it leads to, with the message.
    response = world.admin.post(f"{USERS}/new", data={"name": name, "email": email,
                                                      "role": "member"}, headers=headers,
                                follow_redirects=not headers)
    db.session.commit()
    membership = db.session.scalar(sa.select(Membership).join(
            User, User.id == Membership.user_id).where(
        User.email == email, Membership.account_id == world.acme.id))
    message = db.session.scalar(sa.select(OutboxMessage).where(
        OutboxMessage.to_addr == email, OutboxMessage.account_id == world.acme.id))
    return response, membership, message


def _acme_pages(world, membership_id: int) -> str:
    """What Acme's admin sees of a user: the list, its searches, details, edit, export, mail."""
    pages = [f"{USERS}/", f"{USERS}/?q=bonly", f"{USERS}/?q=betaonly", f"{USERS}/?q=typed",
             f"{USERS}/?q=bo", f"{USERS}/{membership_id}", f"{USERS}/{membership_id}/edit",
             f"{USERS}/export", "/admin/outbox/"]
    texts = []
    for page in pages:
        response = world.admin.get(page)
        assert response.status_code == 200, page
        texts.append(response.get_data(as_text=True))
    return "\n".join(texts)


@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}], ids=["page", "htmx"])
def test_t35_adding_a_known_address_answers_as_a_new_one_and_waits_for_consent(
        world, smtp, headers):
    bob = world.bob.user
    own_hash = bob.password_hash
    # A known address (Bob: Beta only, with a password) and an unknown one, typed alike.
    known, mine, sealed = _added(world, "Typed By A", bob.email, headers)
    unknown, theirs, open_ = _added(world, "Typed By A", "nobody@acme.example", headers)
    assert known.status_code == unknown.status_code
    flashes = [re.findall(r"Added [^<]*", r.get_data(as_text=True))
               for r in (known, unknown)]
    assert flashes[0] == ["Added Typed By A; an e-mail is on its way to bob@beta.example."]
    assert flashes[1] == ["Added Typed By A; an e-mail is on its way to nobody@acme.example."]
    # Each answer's row of the list (the htmx answer carries the list; a page gets it next)
    # is the same but for the address and the id.
    listing = world.admin.get(f"{USERS}/?q=typed").get_data(as_text=True)
    rows = {email: re.sub(rf"{re.escape(email)}|\b{ident}\b", "X", row)
            for email, ident in ((bob.email, mine.id), ("nobody@acme.example", theirs.id))
            for row in re.findall(r"<tr>.*?</tr>", listing, re.S) if email in row}
    assert len(rows) == 2 and rows[bob.email] == rows["nobody@acme.example"]
    # The same state and the same kind of e-mail; only its link is sealed (it grants a
    # credential to someone who has a password: issue 11, finding 1).
    assert mine.invite_state == theirs.invite_state == "invited"
    assert (sealed.kind, sealed.subject) == (open_.kind, open_.subject)
    # Nothing of Beta (Bob's name, his Beta device) in Acme's pages before he accepts.
    seen = _acme_pages(world, mine.id)
    for word in ("Bob Betaonly", "Beta Secret", "Bob's Beta phone"):
        assert word not in seen, word
    assert "Typed By A" in seen
    details = world.admin.get(f"{USERS}/{mine.id}").get_data(as_text=True)
    assert "Reset Password" not in details and "organisation you don" not in details
    # Acme is not among his accounts until he accepts: he can neither choose nor act in it.
    bob_client = signed_in(world.app, bob.email)
    assert bob_client.post("/choose-account", data={"account": world.acme.id}).status_code == 422
    assert bob_client.get(f"{USERS}/").status_code in (302, 403, 404)
    # He accepts with the password he already has: the page asks for it, never a new one.
    link = mailed_link(smtp, bob.email, "/invite/")
    guest = world.app.test_client()
    page = guest.get(link).get_data(as_text=True)
    assert 'name="password"' in page and 'name="confirm"' not in page
    assert guest.post(link, data={"password": "not his password at all 9"}).status_code == 422
    db.session.expire_all()
    assert db.session.get(Membership, mine.id).invite_state == "invited"
    assert guest.post(link, data={"password": builders.PASSWORD}).status_code == 302
    db.session.expire_all()
    joined = db.session.get(Membership, mine.id)
    assert joined.invite_state == "active" and joined.user.password_hash == own_hash
    assert signed_in(world.app, bob.email).post(
        "/choose-account", data={"account": world.acme.id}).status_code == 302
    # From then on his own name shows (DESIGN §1: the person's own name is kept).
    assert "Bob Betaonly" in world.admin.get(f"{USERS}/{mine.id}").get_data(as_text=True)


def test_t35_a_csv_import_treats_known_and_unknown_addresses_alike(world, smtp):
    rows = [("Typed By A", "bob@beta.example", ""), ("Typed By B", "nobody@acme.example", "")]
    upload = world.admin.post(f"{USERS}/import", data={"file": (io.BytesIO(csv_bytes(rows)),
                                                                "people.csv")},
                              content_type="multipart/form-data")
    assert upload.status_code == 302
    preview = world.admin.get(upload.headers["Location"]).get_data(as_text=True)
    assert "link" not in re.sub(r"<[^>]*>", " ", preview).lower().replace("hyperlink", "")
    assert "Bob Betaonly" not in preview
    rows_html = re.findall(r'<tr class="status-[^"]*">.*?</tr>', preview, re.S)
    shapes = [re.sub(r"Typed By [AB]|bob@beta\.example|nobody@acme\.example|\d+", "X", row)
              for row in rows_html]
    assert len(shapes) == 2 and shapes[0] == shapes[1]
    started = world.admin.post(upload.headers["Location"], data={"import_all": "Import all",
                                                                  "invite": "y"})
    assert started.status_code == 302
    deadline = time.monotonic() + 30
    while "Importing…" in (html := world.admin.get(upload.headers["Location"]).get_data(
            as_text=True)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "2 users imported, 0 skipped." in html
    db.session.commit()
    states = dict(db.session.execute(
        sa.select(User.email, Membership.invite_state).join(
            Membership, User.id == Membership.user_id)
        .where(Membership.account_id == world.acme.id, User.email.in_(
            ["bob@beta.example", "nobody@acme.example"]))).all())
    assert states == {"bob@beta.example": "invited", "nobody@acme.example": "invited"}
    seen = world.admin.get(f"{USERS}/?q=typed").get_data(as_text=True)
    assert "Typed By A" in seen and "Bob Betaonly" not in seen
    assert [m.kind for m in db.session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.account_id == world.acme.id,
        OutboxMessage.to_addr.in_(["bob@beta.example", "nobody@acme.example"])))] == [
            "invite", "invite"]
