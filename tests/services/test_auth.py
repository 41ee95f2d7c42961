"""Sign-in on device sessions: authentication, throttling, the device limit, revocation."""
from datetime import timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Device
from portal.models import User
from portal.models import utcnow
from portal.services import auth
from portal.services.errors import ServiceError
from tests.builders import PASSWORD
from tests.builders import make_account
from tests.builders import make_device
from tests.builders import make_user

WEB = auth.Client(kind="web", user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36")


def live_devices(user):
    return db.session.scalars(
        sa.select(Device).where(Device.user_id == user.id, Device.revoked_at.is_(None))
    ).all()


def test_right_password_authenticates_whatever_the_case_of_the_email(account):
    user = auth.authenticate(account.admin.user.email.upper(), PASSWORD)
    assert user.id == account.admin.user_id


@pytest.mark.parametrize("email, password", [
    ("admin-unknown@example.com", PASSWORD),
    (None, "wrong password here"),
    ("not an email", PASSWORD),
])
def test_every_failure_gets_the_same_generic_message(account, email, password):
    with pytest.raises(ServiceError) as info:
        auth.authenticate(email or account.admin.user.email, password)
    assert info.value.message == "The e-mail or password is wrong."


def test_invited_person_without_password_cannot_sign_in(account):
    invited = make_user(account, password=None)
    with pytest.raises(ServiceError, match="e-mail or password is wrong"):
        auth.authenticate(invited.user.email, "")


def test_failures_are_counted_per_person_and_throttle_after_the_limit(account):
    email = account.admin.user.email
    for _ in range(10):
        with pytest.raises(ServiceError):
            auth.authenticate(email, "wrong password")
    user = db.session.get(User, account.admin.user_id)
    db.session.refresh(user)
    assert user.failed_logins == 10
    assert user.throttled_until > utcnow()
    # While throttled even the right password gets the generic failure.
    with pytest.raises(ServiceError, match="e-mail or password is wrong"):
        auth.authenticate(email, PASSWORD)
    assert db.session.scalar(
        sa.select(sa.func.count()).where(AuditEvent.action == "login.throttled")
    ) == 1
    user.throttled_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    auth.authenticate(email, PASSWORD)
    db.session.refresh(user)
    assert user.failed_logins == 0


def test_sign_in_names_the_device_from_the_user_agent(account):
    device, raw = auth.sign_in(account.admin.user, WEB, account_id=account.id)
    assert device.name == "Chrome 131 on Linux"
    assert device.token_hash != raw and len(raw) >= 43
    assert auth.load_session(raw).id == device.id


def test_app_devices_are_named_by_the_app(account):
    client = auth.Client(kind="ipad", name="Anna's iPad", app_version="4.2.1")
    device, _ = auth.sign_in(account.admin.user, client)
    assert device.name == "Anna's iPad — app 4.2.1"


def test_signing_in_beyond_the_limit_ends_the_device_signed_in_first(account):
    user = account.admin.user
    first, first_raw = auth.sign_in(user, WEB)
    second, second_raw = auth.sign_in(user, WEB)
    third, _ = auth.sign_in(user, WEB)
    # The first device was used most recently and the second least recently: the seed's rule
    # ("logged out of the first device") ends the first all the same.
    first.last_seen_at = utcnow() + timedelta(seconds=5)
    second.last_seen_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    fourth, _ = auth.sign_in(user, WEB)
    assert {d.id for d in live_devices(user)} == {second.id, third.id, fourth.id}
    db.session.refresh(first)
    assert first.revoked_reason == "device_limit"
    assert auth.load_session(first_raw) is None
    assert auth.load_session(second_raw) is not None


def test_the_smallest_device_limit_of_a_persons_accounts_applies(account):
    other = make_account(device_limit=1)
    make_user(other, email=account.admin.user.email)
    assert auth.effective_device_limit(account.admin.user) == 1


def test_a_revoked_device_session_is_gone_on_its_next_check(account):
    device, raw = auth.sign_in(account.admin.user, WEB)
    auth.sign_out(device)
    assert auth.load_session(raw) is None
    assert auth.ended_reason(raw) is None  # signing out yourself needs no explanation


def test_an_idle_web_session_expires(account):
    device, raw = auth.sign_in(account.admin.user, WEB)
    device.last_seen_at = utcnow() - timedelta(minutes=31)
    db.session.commit()
    assert auth.load_session(raw) is None
    assert "expired" in auth.ended_reason(raw)


def test_last_seen_is_written_at_most_once_a_minute(account):
    device, raw = auth.sign_in(account.admin.user, WEB)
    seen = device.last_seen_at
    auth.load_session(raw)
    db.session.refresh(device)
    assert device.last_seen_at == seen
    device.last_seen_at = seen - timedelta(minutes=2)
    db.session.commit()
    auth.load_session(raw)
    db.session.refresh(device)
    assert device.last_seen_at > seen - timedelta(minutes=2)


def test_garbage_tokens_load_nothing(app):
    assert auth.load_session(None) is None
    assert auth.load_session("x" * 500) is None
    assert auth.load_session("no such token") is None


def test_a_logged_out_device_is_told_why(account):
    user = make_user(account).user
    _, oldest = make_device(user)
    for _ in range(3):
        make_device(user)
    assert auth.load_session(oldest) is None
    assert "device limit" in auth.ended_reason(oldest)


def test_log_in_creates_a_device_named_from_the_user_agent(account):
    email = account.admin.user.email
    chrome = auth.Client(kind="web", user_agent=(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"))
    signed = auth.log_in(email, PASSWORD, chrome)
    assert signed.device.name == "Chrome 131 on Mac OS X"
    assert signed.account_id == account.id
    assert auth.load_session(signed.token).id == signed.device.id


@pytest.mark.parametrize("case", ["unknown", "deleted", "wrong password", "invited only"])
def test_every_failed_sign_in_gets_the_same_answer(account, case):
    member = make_user(account, password=None if case == "invited only" else PASSWORD)
    email = {"unknown": "nobody@example.com"}.get(case, member.user.email)
    if case == "deleted":
        member.deleted_at = utcnow()
        db.session.commit()
    password = "wrong password 123" if case == "wrong password" else PASSWORD
    with pytest.raises(ServiceError) as caught:
        auth.log_in(email, password, WEB)
    assert caught.value.message == auth.GENERIC_FAILURE
    assert caught.value.field is None


def fail_sign_ins(email: str, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ServiceError):
            auth.log_in(email, "wrong guess 1234", WEB)


@pytest.mark.config(LOGIN_THROTTLE_AFTER=3)
def test_failures_throttle_the_person_and_the_right_password_then_fails_the_same(account):
    user = make_user(account).user
    fail_sign_ins(user.email, 3)
    db.session.refresh(user)
    assert user.failed_logins == 3
    assert user.throttled_until > utcnow()
    with pytest.raises(ServiceError) as caught:
        auth.log_in(user.email, PASSWORD, WEB)
    assert caught.value.message == auth.GENERIC_FAILURE
    actions = db.session.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.subject_user_id == user.id)).all()
    assert actions.count("login.failed") == 3 and actions.count("login.throttled") == 1
    # Waiting the throttle out is enough: there is no permanent lockout.
    db.session.execute(sa.update(User).where(User.id == user.id)
                       .values(throttled_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert auth.log_in(user.email, PASSWORD, WEB).user.id == user.id
    db.session.refresh(user)
    assert user.failed_logins == 0 and user.throttled_until is None


@pytest.mark.config(LOGIN_THROTTLE_AFTER=3)
def test_guesses_during_a_throttle_still_count_but_do_not_extend_it(account):
    user = make_user(account).user
    fail_sign_ins(user.email, 5)
    db.session.refresh(user)
    assert user.failed_logins == 5
    first_until = user.throttled_until
    assert first_until - utcnow() <= timedelta(minutes=1)


def test_old_failures_are_forgotten_after_twelve_hours(account):
    user = make_user(account).user
    db.session.execute(sa.update(User).where(User.id == user.id).values(
        failed_logins=7, failed_login_at=utcnow() - timedelta(hours=13)))
    db.session.commit()
    fail_sign_ins(user.email, 1)
    db.session.refresh(user)
    assert user.failed_logins == 1


def test_sign_in_bookkeeping_does_not_bump_the_persons_version(account):
    user = make_user(account).user
    version = user.version
    auth.log_in(user.email, PASSWORD, WEB)
    db.session.refresh(user)
    assert user.version == version


@pytest.mark.config(ARGON2_TIME_COST=2, ARGON2_MEMORY_COST=19456)
def test_a_hash_below_the_settings_is_rehashed_at_sign_in(app, account):
    user = make_user(account).user
    legacy = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash(PASSWORD)
    db.session.execute(sa.update(User).where(User.id == user.id).values(password_hash=legacy))
    db.session.commit()
    auth.log_in(user.email, PASSWORD, WEB)
    db.session.refresh(user)
    assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_ended_devices_older_than_the_history_are_removed_at_sign_in(account):
    user = make_user(account).user
    old, _ = make_device(user)
    db.session.execute(sa.update(Device).where(Device.id == old.id).values(
        revoked_at=utcnow() - timedelta(days=31), revoked_reason="logout"))
    db.session.commit()
    make_device(user)
    remaining = db.session.scalars(sa.select(Device.revoked_at).where(Device.user_id == user.id))
    assert list(remaining) == [None]
