"""User details rules: edit (version check, identity rule, re-invite), role, reset, report."""
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
from portal.services import profiles
from portal.services.errors import Conflict
from portal.services.errors import NotFound
from portal.services.errors import ServiceError
from tests.builders import make_account
from tests.builders import make_user
from tests.mailbox import delivered_link


def outbox(kind: str) -> list[OutboxMessage]:
    return list(db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


def edit(actor, membership, **changes):
    db.session.refresh(membership.user)
    values = dict(name=membership.user.name, email=membership.user.email,
                  phone=membership.user.phone, version=membership.user.version)
    values.update(changes)
    return profiles.update_profile(actor, membership.id, **values)


def test_editing_name_and_phone_saves_normalised_values_and_audits(account):
    member = make_user(account, name="Old Name")
    update = edit(account.admin, member, name=" New   Name ", phone="+1 (415) 555-2671")
    assert update.changed == ("name", "phone")
    db.session.refresh(member.user)
    assert (member.user.name, member.user.phone) == ("New Name", "+14155552671")
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.updated"))
    assert event.details["changes"]["name"] == ["Old Name", "New Name"]


def test_an_unchanged_save_changes_nothing(account):
    member = make_user(account)
    version = member.user.version
    assert edit(account.admin, member).changed == ()
    db.session.refresh(member.user)
    assert member.user.version == version


def test_a_save_based_on_an_older_version_is_refused(account):
    member = make_user(account, name="Original")
    stale = member.user.version
    edit(account.admin, member, name="First Editor")
    with pytest.raises(Conflict, match="Someone else changed this user"):
        edit(account.admin, member, name="Second Editor", version=stale)
    db.session.refresh(member.user)
    assert member.user.name == "First Editor"


def test_a_save_racing_another_commit_is_refused_by_the_version_column(account):
    """Both saves read version N; the other writes first; ours is refused by the UPDATE itself.

    (The other write is simulated in this session, so the refusal's rollback undoes it too.)
    """
    member = make_user(account, name="Original")
    read = db.session.get(User, member.user_id)
    version = read.version
    # The other admin's save lands between our read and our write (our copy stays at N).
    db.session.execute(
        sa.update(User).where(User.id == read.id).values(name="Theirs", version=version + 1),
        execution_options={"synchronize_session": False},
    )
    with pytest.raises(Conflict, match="Someone else changed this user"):
        profiles.update_profile(account.admin, member.id, name="Ours", email=read.email,
                                phone=None, version=version)
    db.session.expire_all()
    assert db.session.get(User, member.user_id).name != "Ours"


def test_changing_the_email_of_someone_invited_sends_a_new_invitation(account):
    member = make_user(account, email="typo@exampel.com", password=None)
    old_link = db.session.scalar(sa.select(ActionToken.id).where(
        ActionToken.user_id == member.user_id))
    update = edit(account.admin, member, email="right@example.com")
    assert update.invited and "new invitation" in str(update)
    assert outbox("invite")[-1].to_addr == "right@example.com"
    assert db.session.get(ActionToken, old_link).used_at is not None


def test_changing_the_email_of_someone_active_tells_the_old_address(account):
    member = make_user(account, email="before@example.com")
    update = edit(account.admin, member, email="after@example.com")
    assert not update.invited
    [notice] = outbox("email_changed")
    assert notice.to_addr == "before@example.com" and "after@example.com" in notice.body_text


def test_an_email_used_by_another_person_is_refused(account):
    member = make_user(account)
    make_user(make_account(), email="taken@example.com")
    with pytest.raises(ServiceError, match="Another person already uses") as refused:
        edit(account.admin, member, email="Taken@Example.com")
    assert refused.value.field == "email"


def test_the_email_of_someone_also_in_an_account_i_do_not_administer_stays(account):
    other = make_account()
    shared = make_user(other, email="shared@example.com")
    here = make_user(account, email="shared@example.com")
    assert here.user_id == shared.user_id
    assert not profiles.can_change_identity(account.admin, here.user)
    with pytest.raises(ServiceError, match="don't administer") as refused:
        edit(account.admin, here, email="hijack@example.com")
    assert refused.value.field == "email"
    # Name and phone are not identity secrets: they may change.
    assert edit(account.admin, here, name="Shared Person").changed == ("name",)


def test_the_email_may_change_when_i_administer_every_account_of_the_person(account):
    other = make_account()
    here = make_user(account, email="both@example.com")
    make_user(other, email="both@example.com")
    # The acting admin is an admin of the other account too.
    make_user(other, email=account.admin.user.email, role="admin")
    assert profiles.can_change_identity(account.admin, here.user)
    assert edit(account.admin, here, email="moved@example.com").changed == ("email",)


def test_another_accounts_user_is_not_found(account):
    stranger = make_user(make_account())
    with pytest.raises(NotFound):
        edit(account.admin, stranger, name="Hacked")
    with pytest.raises(NotFound):
        profiles.change_role(account.admin, stranger.id, "admin")
    with pytest.raises(NotFound):
        profiles.send_password_reset(account.admin, stranger.id)


def test_roles_change_both_ways_and_are_audited(account):
    member = make_user(account)
    profiles.change_role(account.admin, member.id, "admin")
    assert db.session.get(Membership, member.id).role == "admin"
    profiles.change_role(account.admin, member.id, "member")
    assert db.session.get(Membership, member.id).role == "member"
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
        AuditEvent.action == "user.role_changed")) == 2


def test_the_last_admin_cannot_be_made_a_member(account):
    with pytest.raises(Conflict, match="last admin") as refused:
        profiles.change_role(account.admin, account.admin.id, "member")
    assert refused.value.status == 409
    assert db.session.get(Membership, account.admin.id).role == "admin"
    second = make_user(account, role="admin")
    profiles.change_role(second, account.admin.id, "member")
    with pytest.raises(Conflict):
        profiles.change_role(second, second.id, "member")


def test_reset_password_mails_a_link_that_works_once(account, client, smtp):
    member = make_user(account)
    profiles.send_password_reset(account.admin, member.id)
    [mail] = outbox("reset_password")
    assert mail.to_addr == member.user.email
    link = delivered_link(smtp, member.user.email, "/reset-password/")
    assert f"An administrator of {account.name}" in smtp.to(member.user.email)[-1].text
    assert client.get(link).status_code == 200
    with pytest.raises(ServiceError, match="just sent"):
        profiles.send_password_reset(account.admin, member.id)
    assert len(outbox("reset_password")) == 1


def test_reset_password_is_not_limited_like_the_self_service_form(account):
    member = make_user(account)
    for minutes in (50, 40, 30):
        db.session.add(ActionToken(user_id=member.user_id, purpose="reset", token_hash=f"{minutes}",
                                   password_stamp="x", expires_at=utcnow(),
                                   created_at=utcnow() - timedelta(minutes=minutes)))
    db.session.commit()
    profiles.send_password_reset(account.admin, member.id)
    assert len(outbox("reset_password")) == 1


def test_reset_password_for_someone_without_a_password_points_to_resend_invite(account):
    waiting = make_user(account, password=None)
    with pytest.raises(ServiceError, match="Resend Invite"):
        profiles.send_password_reset(account.admin, waiting.id)


def test_the_activity_report_summarises_the_period_from_the_audit_trail(account):
    member = make_user(account, name="Reported Person")
    other = make_account()
    db.session.add_all([
        AuditEvent(account_id=account.id, subject_user_id=member.user_id, action="login",
                   actor_user_id=member.user_id, created_at=utcnow() - timedelta(days=2)),
        AuditEvent(account_id=account.id, subject_user_id=member.user_id, action="login",
                   actor_user_id=member.user_id, created_at=utcnow() - timedelta(days=3)),
        AuditEvent(account_id=account.id, subject_user_id=member.user_id, action="login",
                   actor_user_id=member.user_id, created_at=utcnow() - timedelta(days=40)),
        AuditEvent(account_id=other.id, subject_user_id=member.user_id, action="secret.thing",
                   created_at=utcnow()),
    ])
    db.session.commit()
    report = profiles.send_activity_report(account.admin, member.id, 7)
    counts = dict(report.counts)
    assert counts["login"] == 2 and "secret.thing" not in counts
    [mail] = outbox("activity_report")
    assert mail.to_addr == member.user.email and "last 7 days" in mail.subject
    assert "login" in mail.body_text and "secret" not in mail.body_text
    assert db.session.scalar(sa.select(AuditEvent.details).where(
        AuditEvent.action == "activity_report.sent"))["days"] == 7


def test_the_activity_report_period_is_one_of_the_offered_ones(account):
    member = make_user(account)
    with pytest.raises(ServiceError, match="7, 30 or 90"):
        profiles.send_activity_report(account.admin, member.id, 3650)
