"""Second factors (issue 18): TOTP enrolment and sign-in, replay, recovery codes, the throttle,
the account rule, the API's two-step sign-in, and admins resetting factors."""
import re
import time

import pyotp
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Device
from portal.models import OutboxMessage
from portal.models import RecoveryCode
from portal.models import SecondFactor
from portal.models import User
from tests.builders import PASSWORD
from tests.builders import make_account
from tests.builders import make_user
from tests.web.test_api import bearer
from tests.web.test_api import body


def enrol_totp(client, name="Phone") -> pyotp.TOTP:
    """Add an authenticator app through the pages; returns the app (pyotp) that was set up."""
    page = client.post("/account/security/totp")
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)
    assert 'src="data:image/png;base64,' in html  # the QR code, server-side, no inline style
    factor_id = re.search(r'/account/security/totp/(\d+)/confirm', html).group(1)
    totp = pyotp.TOTP(secret)
    done = client.post(f"/account/security/totp/{factor_id}/confirm",
                       data={"code": totp.now(), "name": name})
    assert done.status_code == 302 and done.location.endswith("/account/security")
    return totp


def next_code(totp: pyotp.TOTP, steps: int = 1) -> str:
    """A code of a later time step (still inside the accepted window, not yet used)."""
    return totp.at(time.time() + 30 * steps)


def devices_of(user_id) -> int:
    db.session.commit()
    return db.session.scalar(sa.select(sa.func.count(Device.id)).where(Device.user_id == user_id))


def actions(user_id) -> list[str]:
    db.session.commit()
    return list(db.session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.subject_user_id == user_id)
        .order_by(AuditEvent.id)))


def test_totp_enrolment_then_sign_in_with_a_code_on_its_own_step(app, admin, account):
    user = account.admin.user
    first = enrol_totp(admin)
    assert "Phone" in admin.get("/account/security").get_data(as_text=True)
    other = app.test_client()
    before = devices_of(user.id)
    step = other.login(user.email)
    assert step.status_code == 302 and "/login/second-factor" in step.location
    # The password alone opens no session: no device row, nothing reachable.
    assert devices_of(user.id) == before
    assert other.get("/admin/participants/users/").status_code == 302
    page = other.get("/login/second-factor")
    assert page.status_code == 200 and "authenticator app" in page.get_data(as_text=True)
    done = other.post("/login/second-factor", data={"code": next_code(first)})
    assert done.status_code == 302 and done.location.endswith("/admin/participants/users/")
    assert devices_of(user.id) == before + 1
    assert other.get("/admin/participants/users/").status_code == 200
    events = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.subject_user_id == user.id,
        AuditEvent.action.in_(["second_factor.added", "second_factor.used"]))).all()
    assert {(e.action, e.account_id, e.details["kind"]) for e in events} == {
        ("second_factor.added", account.id, "totp"), ("second_factor.used", account.id, "totp")}


def test_a_wrong_first_code_does_not_confirm_the_app(admin, account):
    html = admin.post("/account/security/totp").get_data(as_text=True)
    factor_id = re.search(r'/account/security/totp/(\d+)/confirm', html).group(1)
    wrong = admin.post(f"/account/security/totp/{factor_id}/confirm", data={"code": "000000"})
    assert wrong.status_code == 422 and "not right" in wrong.get_data(as_text=True)
    db.session.commit()
    factor = db.session.get(SecondFactor, int(factor_id))
    assert factor.confirmed_at is None
    assert "No second factor yet" in admin.get("/account/security").get_data(as_text=True)


def test_a_used_code_is_refused_within_its_window(app, admin, account):
    user = account.admin.user
    totp = enrol_totp(admin)
    code = next_code(totp)
    first = app.test_client()
    first.login(user.email)
    assert first.post("/login/second-factor", data={"code": code}).status_code == 302
    replay = app.test_client()
    replay.login(user.email)
    refused = replay.post("/login/second-factor", data={"code": code})
    assert refused.status_code == 422
    assert "not right" in refused.get_data(as_text=True)
    db.session.commit()
    assert db.session.get(User, user.id).failed_logins == 1
    assert actions(user.id).count("second_factor.failed") == 1


@pytest.mark.config(LOGIN_THROTTLE_AFTER=3)
def test_wrong_codes_count_toward_the_per_person_throttle(app, admin, account):
    user = account.admin.user
    totp = enrol_totp(admin)
    waiting = app.test_client()
    waiting.login(user.email)  # a second step opened before the attack
    before = devices_of(user.id)
    attacker = app.test_client()
    for _attempt in range(3):
        # A right password in between must not wipe out the wrong codes.
        attacker.login(user.email)
        assert attacker.post("/login/second-factor", data={"code": "123456"}).status_code == 422
    db.session.commit()
    stored = db.session.get(User, user.id)
    assert stored.failed_logins == 3 and stored.throttled_until is not None
    assert actions(user.id).count("login.throttled") == 1
    # Throttled: the password step gives the generic answer, and even the right code is refused.
    assert attacker.login(user.email).status_code == 200  # the sign-in page again, no step
    assert waiting.post("/login/second-factor", data={"code": next_code(totp)}).status_code == 422
    assert devices_of(user.id) == before


def test_recovery_codes_are_shown_once_stored_hashed_and_single_use(app, admin, account):
    user = account.admin.user
    enrol_totp(admin)
    page = admin.post("/account/security/recovery-codes")
    codes = re.findall(r"<code>([2-9a-z]{5}-[2-9a-z]{5})</code>", page.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    db.session.commit()
    stored = db.session.scalars(sa.select(RecoveryCode.code_hash).where(
        RecoveryCode.user_id == user.id)).all()
    assert len(stored) == 10 and not set(codes) & set(stored)
    assert all(h.startswith("$argon2id$") for h in stored)
    assert "10 unused recovery codes" in admin.get("/account/security").get_data(as_text=True)
    first = app.test_client()
    first.login(user.email)
    assert first.post("/login/second-factor", data={"code": codes[0].upper()}).status_code == 302
    again = app.test_client()
    again.login(user.email)
    assert again.post("/login/second-factor", data={"code": codes[0]}).status_code == 422
    assert again.post("/login/second-factor", data={"code": codes[1]}).status_code == 302
    assert actions(user.id).count("recovery_code.used") == 2
    # Regenerating makes the old ones stop working.
    admin.post("/account/security/recovery-codes")
    late = app.test_client()
    late.login(user.email)
    assert late.post("/login/second-factor", data={"code": codes[2]}).status_code == 422


def test_removing_a_factor_needs_the_password(app, admin, account):
    user = account.admin.user
    enrol_totp(admin)
    admin.post("/account/security/recovery-codes")
    factor_id = db.session.scalar(sa.select(SecondFactor.id).where(SecondFactor.user_id == user.id))
    form = admin.get(f"/account/security/factors/{factor_id}/remove")
    assert form.status_code == 200
    wrong = admin.post(f"/account/security/factors/{factor_id}/remove",
                       data={"password": "not the password"})
    assert wrong.status_code == 422
    assert db.session.get(SecondFactor, factor_id) is not None
    done = admin.post(f"/account/security/factors/{factor_id}/remove", data={"password": PASSWORD})
    assert done.status_code == 302
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(SecondFactor.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(RecoveryCode.id))) == 0  # last factor gone
    assert "second_factor.removed" in actions(user.id)
    notices = db.session.scalars(sa.select(OutboxMessage.body_text).where(
        OutboxMessage.kind == "second_factor_changed", OutboxMessage.to_addr == user.email)).all()
    assert ["Phone was added" in n for n in notices] == [True, False]
    assert "Phone was removed" in notices[1]
    # Without a factor the password is enough again.
    assert app.test_client().login(user.email).location.endswith("/admin/participants/users/")


def test_another_persons_factor_is_404(app, admin, account):
    member = make_user(account)
    other = app.test_client()
    other.login(member.user.email)
    enrol_totp(other)
    factor_id = db.session.scalar(sa.select(SecondFactor.id))
    assert admin.get(f"/account/security/factors/{factor_id}/remove").status_code == 404
    assert admin.post(f"/account/security/factors/{factor_id}/remove",
                      data={"password": PASSWORD}).status_code == 404


def test_the_account_rule_sends_admins_without_a_factor_to_enrol_first(app, admin, account):
    admin.post("/admin/settings/", data={"password_min_length": "12", "invite_valid_hours": "72",
                                        "second_factor_rule": "admins"})
    db.session.commit()
    assert db.session.get(type(account), account.id).second_factor_rule == "admins"
    member = make_user(account)
    fresh = app.test_client()
    response = fresh.login(account.admin.user.email)
    assert response.status_code == 302
    for path in ("/admin/participants/users/", "/admin/settings/", "/account"):
        blocked = fresh.get(path)
        assert blocked.status_code == 302 and blocked.location.endswith("/account/security"), path
    htmx = fresh.get("/admin/participants/users/", headers={"HX-Request": "true"})
    assert htmx.headers.get("HX-Redirect", "").endswith("/account/security")
    page = fresh.get("/account/security").get_data(as_text=True)
    assert "requires a second factor" in page
    # Members are not asked under "admins".
    plain = app.test_client()
    plain.login(member.user.email)
    assert plain.get("/account").status_code == 200
    # Once a factor is set, everything opens again.
    enrol_totp(fresh)
    assert fresh.get("/admin/participants/users/").status_code == 200
    # An app of an admin without a factor is refused until one is added in a browser.
    make_user(account, email="second.admin@example.com", role="admin")
    refused = app.test_client().post("/api/v1/sessions", json=body("second.admin@example.com"),
                                     csrf=False)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "second_factor_setup_required"


def test_an_app_token_issued_before_the_rule_only_logs_out_until_a_factor_is_added(app, client,
                                                                                   account):
    from tests.web.test_api import api_sign_in

    token = api_sign_in(client, account.admin.user.email)
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    account.second_factor_rule = "admins"
    db.session.commit()
    held = client.get("/api/v1/me", headers=bearer(token))
    assert held.status_code == 403
    assert held.get_json()["error"]["code"] == "second_factor_setup_required"
    assert client.delete("/api/v1/sessions/current", headers=bearer(token)).status_code == 204


def test_the_strictest_rule_among_a_persons_accounts_applies(app, account):
    strict = make_account("Strict", second_factor_rule="everyone")
    member = make_user(account)  # a member where the rule is off ...
    make_user(strict, email=member.user.email)  # ... and in an account where everyone must
    client = app.test_client()
    client.login(member.user.email)
    client.post("/choose-account", data={"account": account.id})
    blocked = client.get("/account")
    assert blocked.status_code == 302 and blocked.location.endswith("/account/security")
    assert "Strict requires a second factor" in client.get("/account/security").get_data(
        as_text=True)


def test_the_api_signs_in_in_two_steps(app, client, account):
    member = make_user(account)
    web = app.test_client()
    web.login(member.user.email)
    totp = enrol_totp(web)
    before = devices_of(member.user_id)
    first = client.post("/api/v1/sessions", json=body(member.user.email), csrf=False)
    assert first.status_code == 401
    error = first.get_json()["error"]
    assert error["code"] == "second_factor_required" and len(error["challenge_id"]) >= 40
    assert devices_of(member.user_id) == before
    wrong = client.post("/api/v1/sessions", json={"challenge_id": error["challenge_id"],
                                                  "code": "000000"}, csrf=False)
    assert wrong.status_code == 401 and wrong.get_json()["error"]["code"] == "invalid_code"
    done = client.post("/api/v1/sessions", json={"challenge_id": error["challenge_id"],
                                                 "code": next_code(totp)}, csrf=False)
    assert done.status_code == 201, done.get_json()
    token = done.get_json()["token"]
    assert done.get_json()["device"]["name"] == "Front desk — app 4.2.1"
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert devices_of(member.user_id) == before + 1
    # The challenge completes once.
    again = client.post("/api/v1/sessions", json={"challenge_id": error["challenge_id"],
                                                  "code": next_code(totp, 0)}, csrf=False)
    assert again.status_code == 401 and again.get_json()["error"]["code"] == "invalid_challenge"
    unknown = client.post("/api/v1/sessions", json={"challenge_id": "nope", "code": "123456"},
                          csrf=False)
    assert unknown.get_json()["error"]["code"] == "invalid_challenge"


def test_user_details_shows_only_whether_there_is_a_factor_and_resets_it(app, admin, account):
    member = make_user(account)
    web = app.test_client()
    web.login(member.user.email)
    enrol_totp(web, name="Secret phone name")
    page = admin.get(f"/admin/participants/users/{member.id}").get_data(as_text=True)
    assert 'id="second-factor"' in page and "Yes" in page
    assert "Secret phone name" not in page and "Reset second factors" in page
    confirm = admin.get(f"/admin/participants/users/{member.id}/second-factors/reset")
    assert confirm.status_code == 200
    done = admin.post(f"/admin/participants/users/{member.id}/second-factors/reset")
    assert done.status_code == 302
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(SecondFactor.id))) == 0
    event = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "second_factor.reset_by_admin"))
    assert event.actor_user_id == account.admin.user_id and event.subject_user_id == member.user_id
    mail = db.session.scalar(sa.select(OutboxMessage).where(
        OutboxMessage.kind == "second_factors_reset"))
    assert mail.to_addr == member.user.email and account.admin.user.name in mail.body_text
    assert app.test_client().login(member.user.email).location.endswith("/account")


def test_admin_reset_is_refused_for_a_person_shared_with_another_account(app, admin, account):
    elsewhere = make_account("Elsewhere")
    member = make_user(account)
    make_user(elsewhere, email=member.user.email)
    web = app.test_client()
    web.login(member.user.email)
    web.post("/choose-account", data={"account": account.id})
    enrol_totp(web)
    page = admin.get(f"/admin/participants/users/{member.id}").get_data(as_text=True)
    assert 'id="second-factor"' in page and "Reset second factors" not in page
    refused = admin.post(f"/admin/participants/users/{member.id}/second-factors/reset")
    assert refused.status_code == 403
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(SecondFactor.id))) == 1
    assert not db.session.scalar(sa.select(sa.func.count(OutboxMessage.id)).where(
        OutboxMessage.kind == "second_factors_reset"))


def test_admin_reset_of_another_accounts_user_is_404(app, admin, account):
    other = make_account("Other")
    member = make_user(other)
    assert admin.post(f"/admin/participants/users/{member.id}/second-factors/reset"
                      ).status_code == 404


def test_bad_passkey_input_gets_a_clear_4xx_never_a_5xx(app, admin, account):
    user = account.admin.user
    for payload in ({}, {"credential": "x"}, {"credential": {"id": "AAAA", "response": {}}},
                    {"name": ["x"], "credential": {"id": 5}}):
        response = admin.post("/account/security/passkeys", json=payload)
        assert response.status_code == 422 and response.get_json()["error"], payload
    options = admin.post("/account/security/passkeys/options", json={})
    assert options.status_code == 200 and options.get_json()["authenticatorSelection"][
        "userVerification"] == "preferred"
    assert admin.post("/account/security/passkeys", data="not json",
                      content_type="text/plain").status_code == 400
    # Without a pending sign-in the second step sends back to the password.
    stranger = app.test_client()
    assert stranger.get("/login/second-factor").location.endswith("/login")
    assert stranger.post("/login/second-factor/passkey", json={}).status_code == 401
    assert stranger.post("/login/second-factor/passkey-options").status_code == 401
    # A forged assertion on a real second step counts as a failed attempt.
    enrol_totp(admin)
    stranger.login(user.email)
    assert stranger.post("/login/second-factor/passkey", json={"credential": {"id": "AAAA"}}
                         ).status_code == 422
    db.session.commit()
    assert db.session.get(User, user.id).failed_logins == 1
