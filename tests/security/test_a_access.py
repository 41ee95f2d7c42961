"""A. Tenant isolation, IDOR and access control (SECURITY-CHECKLIST T01–T08).

Acme's admin (``world.admin``) attacks Beta's objects; X is a user of Acme and an admin of Beta.
"""
import csv
import io
import json
from urllib.parse import quote_plus

import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Device
from portal.models import GroupMember
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import Step
from portal.models import User
from portal.models import utcnow
from tests import builders
from tests.builders import csv_bytes
from tests.security.conftest import GROUPS
from tests.security.conftest import HX
from tests.security.conftest import TASKSTREAMS
from tests.security.conftest import USERS
from tests.security.conftest import VIEWS
from tests.security.conftest import choose
from tests.security.conftest import link_in
from tests.security.conftest import live_devices
from tests.security.conftest import signed_in
from tests.security.conftest import sample_path
from tests.security.conftest import snapshot
from tests.security.conftest import without_tokens

MISSING = 999_999
BETA_WORDS = ("Bob Betaonly", "bob@beta.example", "Beta Secret", "Beta step", "Carol Betainvited",
              "Dave Betadeleted", "Eve Betaimport")

READS = (
    "{USERS}/{bob}", "{USERS}/{bob}/edit", "{USERS}/{bob}/devices", "{USERS}/{dave}",
    "{GROUPS}/{group}", "{TASKSTREAMS}/{taskstream}", "/admin/outbox/{message}",
    "{USERS}/import/{job}",
)


def paths(template: str, ids: dict) -> str:
    return template.format(USERS=USERS, GROUPS=GROUPS, TASKSTREAMS=TASKSTREAMS, VIEWS=VIEWS,
                           **ids)


def assert_no_beta_data(html: str) -> None:
    for word in BETA_WORDS:
        assert word not in html, word


def test_t01_another_accounts_pages_and_fragments_are_404_like_a_missing_id(world):
    ids = dict(world.beta_ids(), dave=world.dave.id)
    missing = {key: MISSING for key in ids}
    for template in READS:
        for headers in ({}, HX):
            response = world.admin.get(paths(template, ids), headers=headers)
            absent = world.admin.get(paths(template, missing), headers=headers)
            assert response.status_code == absent.status_code == 404, template
            html = response.get_data(as_text=True)
            assert without_tokens(html) == without_tokens(absent.get_data(as_text=True)), template
            assert_no_beta_data(html)


def test_t01_sessions_in_another_account_show_only_as_a_count(world):
    """Finding 3: X's Acme details list X's Acme sessions only; Beta's are a count."""
    x = world.x_acme.user
    beta = choose(signed_in(world.app, x.email), world.beta.id)
    db.session.execute(sa.update(Device).where(Device.user_id == x.id)
                       .values(name="X's Beta laptop"))
    db.session.commit()
    for url in (f"{USERS}/{world.x_acme.id}/devices", f"{USERS}/{world.x_acme.id}"):
        for headers in ({}, HX):
            html = world.admin.get(url, headers=headers).get_data(as_text=True)
            assert "X&#39;s Beta laptop" not in html and "Beta laptop" not in html, url
            assert "1 session in other organisations" in html, url
    acme = choose(signed_in(world.app, x.email), world.acme.id)
    acme_device = live_devices(x.id)[-1]
    html = world.admin.get(f"{USERS}/{world.x_acme.id}/devices").get_data(as_text=True)
    assert acme_device.name in html and '<span class="badge">this device' not in html
    assert "1 session in other organisations" in html
    assert beta.get("/account").status_code == acme.get("/account").status_code == 200


def test_t01_last_seen_in_another_account_does_not_show(world):
    """Finding 3: "last seen" on Acme's pages is X's last activity in Acme, not in Beta."""
    x = world.x_acme.user
    choose(signed_in(world.app, x.email), world.beta.id)
    db.session.refresh(world.x_acme)
    assert db.session.get(User, x.id).last_seen_at is not None
    detail = world.admin.get(f"{USERS}/{world.x_acme.id}").get_data(as_text=True)
    assert "<dt>Last seen</dt><dd>never</dd>" in detail
    rows = world.admin.get(f"{USERS}/?q=xavier", headers=HX).get_data(as_text=True)
    assert "Xavier Shared" in rows and utcnow().strftime("%Y-%m-%d") not in rows
    export = world.admin.get(f"{USERS}/export").get_data(as_text=True)
    (row,) = [r for r in csv.DictReader(io.StringIO(export)) if r["Email"] == x.email]
    assert not any(row[key] for key in row if "seen" in key.lower()), row
    choose(signed_in(world.app, x.email), world.acme.id)
    detail = world.admin.get(f"{USERS}/{world.x_acme.id}").get_data(as_text=True)
    assert "<dt>Last seen</dt><dd>never</dd>" not in detail and " UTC</dd>" in detail


def test_t02_an_admin_cannot_end_a_session_signed_in_to_another_account(world):
    """Finding 3: X's session in Beta is not Acme's to end (404, like a missing device)."""
    x = world.x_acme.user
    beta = choose(signed_in(world.app, x.email), world.beta.id)
    (device,) = live_devices(x.id)
    url = f"{USERS}/{world.x_acme.id}/devices/{device.id}/logout"
    for headers in ({}, HX):
        response = world.admin.post(url, headers=headers)
        absent = world.admin.post(f"{USERS}/{world.x_acme.id}/devices/{MISSING}/logout",
                                  headers=headers)
        assert response.status_code == absent.status_code == 404
    assert [d.id for d in live_devices(x.id)] == [device.id]
    assert beta.get(f"{USERS}/").status_code == 200
    acme = choose(signed_in(world.app, x.email), world.acme.id)
    acme_device = live_devices(x.id)[-1]
    ended = world.admin.post(f"{USERS}/{world.x_acme.id}/devices/{acme_device.id}/logout",
                             data={"confirmed": "y"})
    assert ended.status_code == 302
    assert acme.get("/account").status_code == 302
    assert beta.get(f"{USERS}/").status_code == 200


# Writes on Beta's objects with a valid CSRF token: (path template, form data).
WRITES = (
    ("{USERS}/{bob}/edit", {"name": "Hacked", "email": "hacked@acme.example", "version": "1"}),
    ("{USERS}/{bob}/role", {"role": "admin"}),
    ("{USERS}/{bob}/reset-password", {}),
    ("{USERS}/{bob}/resend-invite", {}),
    ("{USERS}/{carol}/resend-invite", {}),
    ("{USERS}/{carol}/copy-invitation-link", {"confirmed": "y"}),  # issue 15: never her link
    ("{USERS}/{bob}/activity-report", {"days": "7"}),
    ("{USERS}/{bob}/devices/{device}/logout", {}),
    ("{GROUPS}/{group}/rename", {"name": "Renamed by Acme"}),
    ("{GROUPS}/{group}/members", {"member_ids": "{bob}"}),
    ("{GROUPS}/{group}/members/remove", {"member_ids": "{bob}"}),
    ("{GROUPS}/{group}/delete", {}),
    ("{GROUPS}/member/{bob}/remove", {"group_id": "{group}"}),
    ("{TASKSTREAMS}/{taskstream}/rename", {"name": "Renamed by Acme"}),
    ("{TASKSTREAMS}/{taskstream}/delete", {}),
    ("{TASKSTREAMS}/{taskstream}/steps", {"name": "Acme step", "group_id": ""}),
    ("{TASKSTREAMS}/{taskstream}/steps/{step}/assign", {"group_id": ""}),
    ("{TASKSTREAMS}/{taskstream}/steps/{step}/move", {"direction": "down"}),
    ("{TASKSTREAMS}/{taskstream}/steps/{step}/remove", {}),
    ("{USERS}/import/{job}", {"rows": "all"}),
    ("{VIEWS}/{view}/rename", {"name": "Renamed by Acme"}),  # issue 15: saved views
    ("{VIEWS}/{view}/delete", {}),
    ("{VIEWS}/{view}/delete", {"confirmed": "y"}),
)
# Selections that carry Beta's ids in the body: ignored, so nothing happens to Beta.
BULK = (
    ("{USERS}/bulk/delete", {"ids": "{bob}", "confirmed": "y"}),
    ("{USERS}/bulk/resend-invite", {"ids": "{carol}"}),
    ("{USERS}/resend-lapsed", {"ids": "{carol}", "confirmed": "y"}),
    ("{USERS}/deleted/restore", {"ids": "{dave}"}),
    ("{USERS}/deleted/restore", {"one": "{dave}"}),
    ("{GROUPS}/bulk/delete", {"ids": "{group}"}),
    ("{GROUPS}/add-to-group", {"ids": "{bob}", "group_ids": "{group}"}),
)


def fill(data: dict, ids: dict) -> dict:
    return {key: value.format(**ids) for key, value in data.items()}


def test_t02_writes_on_another_accounts_objects_are_404_and_change_nothing(world, smtp):
    ids = dict(world.beta_ids(), carol=world.carol.id, dave=world.dave.id)
    before = snapshot()
    for template, data in WRITES:
        for headers in ({}, HX):
            response = world.admin.post(paths(template, ids), data=fill(data, ids), headers=headers)
            assert response.status_code == 404, (template, response.status_code)
            assert_no_beta_data(response.get_data(as_text=True))
    for template, data in BULK:
        response = world.admin.post(paths(template, ids), data=fill(data, ids), headers=HX)
        assert response.status_code < 500, template
        assert_no_beta_data(response.get_data(as_text=True))
    assert snapshot() == before
    assert smtp.messages == []
    assert live_devices(world.bob.user_id) != []


def refused_events() -> list[AuditEvent]:
    db.session.commit()
    return list(db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action.like("%denied%")
                                    | AuditEvent.action.like("%refused%")
                                    | AuditEvent.action.like("%forbidden%")
                                    | AuditEvent.action.like("%not_found%")
                                    | AuditEvent.action.like("%authori%"))
        .order_by(AuditEvent.id)))


def test_t02_each_refused_cross_account_request_writes_one_audit_event(world):
    """Finding 6 (ASVS 16.3.2): actor, route and the id asked for; a crawler cannot flood it."""
    actor = world.acme.admin.user
    ids = dict(world.beta_ids(), carol=world.carol.id, dave=world.dave.id)
    requests = [(t, None) for t in READS] + list(WRITES)
    for template, data in requests:
        db.session.execute(sa.delete(AuditEvent))  # a fresh minute for the rate limit
        db.session.commit()
        url = paths(template, ids)
        if data is None:
            response = world.admin.get(url)
        else:
            response = world.admin.post(url, data=fill(data, ids))
        assert response.status_code == 404, template
        events = refused_events()
        assert len(events) == 1, (template, [(e.action, e.details) for e in events])
        (event,) = events
        assert event.actor_user_id == actor.id and event.account_id == world.acme.id
        assert url in json.dumps(event.details), (template, event.details)
    db.session.execute(sa.delete(AuditEvent))
    db.session.commit()
    for number in range(1000, 1300):
        world.admin.get(f"{USERS}/{number}")
    assert 1 <= len(refused_events()) < 300


def test_t03_the_account_comes_from_the_session_never_from_the_request(world):
    acme_member = builders.make_user(world.acme, name="Ann Acme")
    acme_group = builders.make_group(world.acme, "Acme Group")
    acme_stream = builders.make_taskstream(world.acme, "Acme Stream", [("Acme step", None)])
    before = snapshot()
    spoof = {"X-Account-Id": str(world.beta.id), "X-Tenant-Id": str(world.beta.id)}
    # A group of Beta for a user of Acme, and a user of Beta for a group of Acme.
    world.admin.post(f"{GROUPS}/add-to-group",
                     data={"ids": acme_member.id, "group_ids": world.beta_group.id}, headers=HX)
    world.admin.post(f"{GROUPS}/{acme_group.id}/members", data={"member_ids": world.bob.id},
                     headers=HX)
    step = acme_stream.steps[0]
    world.admin.post(f"{TASKSTREAMS}/{acme_stream.id}/steps/{step.id}/assign",
                     data={"group_id": world.beta_group.id}, headers=HX)
    # Acme's own user with Beta's account id in the body and in headers.
    world.admin.post(f"{USERS}/{acme_member.id}/role",
                     data={"role": "admin", "account_id": world.beta.id}, headers=spoof)
    new = world.admin.post(f"{USERS}/new", headers=spoof, data={
        "name": "New Person", "email": "new@acme.example", "role": "member",
        "account_id": world.beta.id, "groups": world.beta_group.id})
    assert new.status_code == 422  # Beta's group is no choice here
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GroupMember).where(
        GroupMember.group_id == world.beta_group.id)) == 1
    assert db.session.get(Step, step.id).group_id is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Membership).where(
        Membership.account_id == world.beta.id)) == 5
    changed = {table for table, rows in snapshot().items() if rows != before[table]}
    assert changed <= {"memberships"}  # Ann became an admin of Acme, nothing more
    assert db.session.get(Membership, acme_member.id).account_id == world.acme.id
    listing = world.admin.get(f"{USERS}/?account_id={world.beta.id}&q=beta", headers=spoof)
    assert listing.status_code == 200
    assert_no_beta_data(listing.get_data(as_text=True))
    chosen = world.admin.post("/choose-account", data={"account": world.beta.id})
    assert chosen.status_code == 422


def test_t04_lists_searches_exports_and_pickers_show_nothing_of_another_account(world):
    acme_group = builders.make_group(world.acme, "Acme Group")
    searches = (
        f"{USERS}/?q={{}}", f"{USERS}/?q={{}}&account_id={world.beta.id}",
        f"{USERS}/deleted?q={{}}", f"{GROUPS}/new?q={{}}", f"{GROUPS}/{acme_group.id}?q={{}}",
        f"{GROUPS}/?q={{}}", "/admin/outbox/?q={}", "/admin/outbox/?q={}&state=pending",
    )
    for template in searches:
        for headers in ({}, HX):
            for email, missing in (("bob@beta.example", "nobody@beta.example"),
                                   ("dave@beta.example", "nobody@beta.example"),
                                   ("carol@beta.example", "nobody@beta.example"),
                                   ("Beta Secret Group", "Gamma Secret Group")):
                known = world.admin.get(template.format(email), headers=headers)
                unknown = world.admin.get(template.format(missing), headers=headers)
                assert known.status_code == unknown.status_code == 200, template
                known_html = without_tokens(known.get_data(as_text=True))
                unknown_html = without_tokens(unknown.get_data(as_text=True)).replace(
                    missing, email).replace(quote_plus(missing), quote_plus(email))
                assert known_html == unknown_html, (template, email)
                assert_no_beta_data(known_html.replace(email, ""))
    export = world.admin.get(f"{USERS}/export?include_deleted=1&account_id={world.beta.id}")
    assert export.status_code == 200
    text = export.get_data(as_text=True)
    assert_no_beta_data(text)
    assert "Xavier Shared" in text  # X is Acme's user too


def test_t05_another_accounts_import_jobs_and_activity_are_404(world):
    job = f"{USERS}/import/{world.beta_job}"
    for headers in ({}, HX):
        assert world.admin.get(job, headers=headers).status_code == 404
        assert world.admin.post(job, data={"rows": "all"}, headers=headers).status_code == 404
    # The uploaded bytes live in the database; the client's name is never a path.
    assert world.beta_admin.get(job).status_code == 200
    # What X did in Beta does not show in X's activity in Acme.
    world.beta_admin.post(f"{GROUPS}/{world.beta_group.id}/rename", data={"name": "Beta Renamed"})
    x_beta = signed_in(world.app, world.x_beta.user.email)
    choose(x_beta, world.beta.id)
    x_beta.post(f"{GROUPS}/{world.beta_group.id}/rename", data={"name": "Beta Secret Again"})
    html = world.admin.get(f"{USERS}/{world.x_acme.id}").get_data(as_text=True)
    assert "Beta Secret" not in html and "Beta Renamed" not in html and "group.renamed" not in html


def test_t06_deleting_a_shared_person_removes_only_this_accounts_membership(world):
    x = world.x_acme.user
    response = world.admin.post(f"{USERS}/bulk/delete",
                                data={"ids": world.x_acme.id, "confirmed": "y"}, headers=HX)
    assert response.status_code == 200
    db.session.commit()
    assert db.session.get(Membership, world.x_acme.id).deleted_at is not None
    assert db.session.get(Membership, world.x_beta.id).deleted_at is None
    client = signed_in(world.app, x.email)
    assert client.get(f"{USERS}/").status_code == 200  # only Beta is left: it is chosen


def test_t06_identity_fields_of_a_shared_person_stay_with_the_person(world):
    x = world.x_acme.user
    url = f"{USERS}/{world.x_acme.id}"
    form = world.admin.get(f"{url}/edit").get_data(as_text=True)
    assert "also in another organisation" in form or "readonly" in form
    world.admin.post(f"{url}/edit", data={"name": x.name, "email": "taken@acme.example",
                                          "version": x.version})
    db.session.commit()
    db.session.refresh(x)
    assert x.email == "x@shared.example"
    # What Acme sees of X: nothing of Beta.
    html = world.admin.get(url).get_data(as_text=True)
    for word in ("Beta", "Beta Secret Group"):
        assert word not in html, word


def test_t06_shared_identity_takeover_through_reset_password_is_impossible(world, runner, smtp):
    """Finding 1: Acme's admin resets X (a Beta admin) and reads the link in Outgoing mail."""
    x = world.x_acme.user
    response = world.admin.post(f"{USERS}/{world.x_acme.id}/reset-password", headers=HX)
    assert response.status_code == 200
    outbox = world.admin.get("/admin/outbox/").get_data(as_text=True)
    assert link_in(outbox, "/reset-password/") is None
    messages = db.session.execute(sa.select(OutboxMessage.id, OutboxMessage.subject).where(
        OutboxMessage.account_id == world.acme.id, OutboxMessage.to_addr == x.email)).all()
    assert any("Reset" in subject for _id, subject in messages), "the reset e-mail is queued"
    for message_id, subject in messages:
        html = world.admin.get(f"/admin/outbox/{message_id}").get_data(as_text=True)
        # The step that must fail: the admin reads the link.
        assert link_in(html, "/reset-password/") is None
        if "Reset" in subject:
            assert "link hidden: only the recipient can use it" in html
    # The recipient, and only they, gets a working link.
    result = runner.invoke(args=["outbox", "deliver"])
    assert result.exit_code == 0, result.output
    (link,) = [link_in(m.text, "/reset-password/") for m in smtp.to(x.email)
               if link_in(m.text, "/reset-password/")]
    assert link is not None
    person = world.app.test_client()
    chosen = person.post(link, data={"password": "a brand new long passphrase",
                                     "confirm": "a brand new long passphrase"})
    assert chosen.status_code == 302, chosen.get_data(as_text=True)[:500]


def test_t07_members_get_403_on_every_admin_route(app, account):
    member = builders.make_user(account)
    client = signed_in(app, member.user.email)
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        path = sample_path(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            assert response.status_code == 403, (method, path, response.status_code)


def test_t07_groups_grant_no_role_and_the_last_admin_stays(app, account, admin):
    member = builders.make_user(account)
    group = builders.make_group(account, "Everyone", [member, account.admin])
    builders.make_taskstream(account, "Approvals", [("Approve", group.id)])
    client = signed_in(app, member.user.email)
    assert client.get(f"{USERS}/").status_code == 403
    # Roles come from the membership alone; a member cannot change them.
    assert client.post(f"{USERS}/{member.id}/role", data={"role": "admin"}).status_code == 403
    demote = admin.post(f"{USERS}/{account.admin.id}/role", data={"role": "member"}, headers=HX)
    assert demote.status_code == 409
    delete = admin.post(f"{USERS}/bulk/delete", data={"ids": account.admin.id, "confirmed": "y"},
                        headers=HX)
    assert delete.status_code < 500
    db.session.commit()
    db.session.refresh(account.admin)
    assert account.admin.role == "admin" and account.admin.deleted_at is None


def test_t08_extra_fields_in_forms_json_and_csv_are_ignored(app, world):
    acme = world.acme
    member = builders.make_user(acme, name="Plain Member")
    user = member.user
    hash_before = user.password_hash
    extra = {"role": "owner", "is_admin": "true", "account_id": world.beta.id,
             "email_verified": "1", "password_hash": "x", "deleted_at": "", "id": "1",
             "version": user.version, "name": "Plain Member", "email": user.email}
    world.admin.post(f"{USERS}/{member.id}/edit", data=extra)
    world.admin.post(f"{USERS}/new", data=dict(extra, email="fresh@acme.example", role="member"))
    api = app.test_client().post("/api/v1/sessions", json={
        "email": user.email, "password": builders.PASSWORD, "device_id": "d1",
        "device_name": "Phone", "kind": "iphone", "app_version": "1.0",
        "is_admin": True, "account_id": world.beta.id, "role": "admin"})
    assert api.status_code in (200, 201, 422), api.get_data(as_text=True)
    upload = world.admin.post(f"{USERS}/import", data={"file": (io.BytesIO(csv_bytes(
        [("Csv Person", "csv@acme.example", "", "admin", str(world.beta.id), "x", "1")],
        header=("Full Name", "Email", "Groups", "role", "account_id", "password_hash", "id"))),
        "people.csv")}, content_type="multipart/form-data")
    assert upload.status_code == 302
    job = upload.headers["Location"]
    world.admin.post(job, data={"rows": "all"})
    db.session.commit()
    db.session.refresh(member)
    db.session.refresh(user)
    assert (member.role, member.account_id, member.deleted_at) == ("member", acme.id, None)
    assert user.password_hash == hash_before
    for email in ("fresh@acme.example", "csv@acme.example"):
        person = db.session.scalar(sa.select(User).where(User.email == email))
        if person is None:
            continue  # the import runs in the background; its rows are checked below if done
        memberships = db.session.scalars(sa.select(Membership).where(
            Membership.user_id == person.id)).all()
        assert [(m.account_id, m.role) for m in memberships] == [(acme.id, "member")], email
        assert person.password_hash is None
