"""Second factors at the service level: the TOTP window, purge, the activity e-mail, settings."""
import threading
import time
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import OutboxMessage
from portal.models import RecoveryCode
from portal.models import SecondFactor
from portal.models import SignInChallenge
from portal.models import utcnow
from portal.services import auth
from portal.services import invitations
from portal.services import purge
from portal.services import profiles
from portal.services import second_factors
from portal.services import second_step
from portal.services import settings
from portal.services.errors import ServiceError
from tests.builders import PASSWORD
from tests.builders import delete_users
from tests.builders import make_account
from tests.builders import make_user


def add_app(user) -> pyotp.TOTP:
    enrolment = second_factors.start_totp(user)
    totp = pyotp.TOTP(enrolment.secret)
    second_factors.confirm_totp(user, enrolment.factor_id, totp.now(), "Phone")
    return totp


def challenge_for(user) -> str:
    with pytest.raises(second_factors.SecondFactorRequired) as pending:
        auth.log_in(user.email, PASSWORD, auth.Client(kind="web"))
    return pending.value.challenge


def test_codes_outside_the_one_step_window_are_refused(account):
    user = make_user(account).user
    totp = add_app(user)
    raw = challenge_for(user)
    with pytest.raises(ServiceError):
        second_step.complete(raw, code=totp.at(time.time() + 90))  # three steps ahead
    with pytest.raises(ServiceError):
        second_step.complete(raw, code=totp.at(time.time() - 90))
    signed = second_step.complete(raw, code=totp.at(time.time() + 30))
    assert signed.device.user_id == user.id


def test_an_expired_second_step_is_refused(account):
    user = make_user(account).user
    totp = add_app(user)
    raw = challenge_for(user)
    db.session.execute(sa.update(SignInChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    with pytest.raises(second_factors.ChallengeInvalid):
        second_step.complete(raw, code=totp.at(time.time() + 30))


def test_the_purge_leaves_no_factor_code_or_challenge_behind(account):
    member = make_user(account)
    user_id = member.user_id
    add_app(member.user)
    second_factors.new_recovery_codes(member.user)
    challenge_for(member.user)
    delete_users(account, member)
    report = purge.purge_expired(now=utcnow() + timedelta(days=31))
    assert report.people == 1
    for model in (SecondFactor, RecoveryCode, SignInChallenge):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(model).where(
            model.user_id == user_id)) == 0


def test_second_factor_events_are_in_the_activity_email(account, smtp):
    member = make_user(account)
    totp = add_app(member.user)
    raw = challenge_for(member.user)
    with pytest.raises(ServiceError):
        second_step.complete(raw, code="000000")
    second_step.complete(raw, code=totp.at(time.time() + 30))
    profiles.send_activity_report(account.admin, member.id, 7)
    mail = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.kind == "activity_report"))
    for line in ("second factor added", "second factor failed", "second factor used"):
        assert line in mail.body_text


def test_settings_take_only_the_three_rules(account):
    base = dict(password_min_length=12, password_require_classes=False, invite_valid_hours=72,
                sender_name=None)
    with pytest.raises(ServiceError) as refused:
        settings.update_settings(account.admin, second_factor_rule="sometimes", **base)
    assert refused.value.field == "second_factor_rule"
    changes = settings.update_settings(account.admin, second_factor_rule="everyone", **base)
    assert changes == {"second_factor_rule": {"old": "off", "new": "everyone"}}
    # Left out, the rule stays as it is.
    assert settings.update_settings(account.admin, **base) == {}


@pytest.mark.parametrize("kind", ["recovery code", "app code"])
def test_one_code_used_by_racing_sign_ins_opens_one_session(app, account, kind):
    from portal import create_app

    member = make_user(account)
    totp = add_app(member.user)
    codes = second_factors.new_recovery_codes(member.user)
    code = codes[0] if kind == "recovery code" else totp.at(time.time() + 30)
    racers = 4
    challenges = [challenge_for(member.user) for _ in range(racers)]
    db.session.commit()
    shared = ("TESTING", "SECRET_KEY", "DATABASE_URL", "ARGON2_TIME_COST", "ARGON2_MEMORY_COST",
              "ARGON2_PARALLELISM")
    instance = create_app({key: app.config[key] for key in shared})
    start = threading.Barrier(racers)
    outcomes = []

    def race(raw):
        with instance.app_context():
            start.wait()
            try:
                second_step.complete(raw, code=code)
                outcomes.append("signed in")
            except ServiceError as error:
                outcomes.append(type(error).__name__)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=race, args=(raw,)) for raw in challenges]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with instance.app_context():
        db.engine.dispose()
    assert sorted(outcomes) == ["ServiceError"] * (racers - 1) + ["signed in"]


def test_an_account_where_the_person_is_only_invited_is_shown_none_of_their_second_factor_events(
        account):
    """Like a failed sign-in (audit.record_in_accounts): the trail of an account whose
    invitation the person has not accepted says nothing of their own doings."""
    member = make_user(account)
    user = member.user
    inviting = make_account()
    invitations.add_person(inviting.admin, name="Invited Elsewhere", email=user.email)
    db.session.commit()
    totp = add_app(user)
    raw = challenge_for(user)
    with pytest.raises(ServiceError):
        second_step.complete(raw, code="000000" if totp.now() != "000000" else "111111")
    db.session.commit()
    events = db.session.execute(sa.select(AuditEvent.action, AuditEvent.account_id).where(
        AuditEvent.subject_user_id == user.id,
        AuditEvent.action.in_(["second_factor.added", "recovery_codes.created",
                               "second_factor.failed"]))).all()
    assert {action for action, _ in events} >= {"second_factor.added", "second_factor.failed"}
    assert {account_id for _, account_id in events} == {account.id}
