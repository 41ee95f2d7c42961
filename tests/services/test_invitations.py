"""Adding people (New User), invitations, Resend Invite and refused addresses."""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import ActionToken
from portal.models import AuditEvent
from portal.models import GroupMember
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import User
from portal.services import invitations
from portal.services import mail
from portal.services import outbox
from portal.services import tokens
from portal.services import users
from portal.services.errors import ServiceError
from portal.services.users import Selection
from portal.services.users import UserFilter
from tests.builders import PASSWORD
from tests.builders import age_invitations
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_user
from tests.mailbox import delivered_link
from tests.services.test_refusal_digest import let_digests_fall_due


def mails(kind: str) -> list[OutboxMessage]:
    return list(db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


def live_tokens(user_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count(ActionToken.id)).where(
        ActionToken.user_id == user_id, ActionToken.purpose == "invite",
        ActionToken.used_at.is_(None)))


def test_adding_a_new_person_invites_them_with_phone_groups_and_role(account):
    team = make_group(account, "Drivers")
    membership = invitations.add_person(
        account.admin, name="  Grace   Hopper ", email="Grace@Navy.Example",
        phone="+44 20 7946 0958", role="admin", group_ids=[team.id],
    )
    user = membership.user
    assert (user.name, user.email, user.phone) == ("Grace Hopper", "grace@navy.example",
                                                   "+442079460958")
    assert membership.role == "admin" and membership.invite_state == "invited"
    assert db.session.scalar(sa.select(GroupMember.group_id).where(
        GroupMember.membership_id == membership.id)) == team.id
    [invite] = mails("invite")
    assert invite.to_addr == "grace@navy.example" and mail.SEALED in invite.context
    assert invite.membership_id == membership.id
    assert db.session.scalar(sa.select(AuditEvent.action).where(
        AuditEvent.subject_user_id == user.id, AuditEvent.action == "user.added"))


@pytest.mark.parametrize("field, values, message", [
    ("email", {"email": "not an address"}, "not valid"),
    ("email", {"email": ""}, "e-mail address is required"),
    ("name", {"name": "   "}, "A name is required"),
    ("phone", {"phone": "call me maybe"}, "not a phone number"),
    ("phone", {"phone": "+44 12"}, "not valid"),
    ("role", {"role": "owner"}, "member or admin"),
])
def test_bad_input_is_refused_on_its_field_and_nothing_is_written(account, field, values, message):
    data = dict(name="Alan Turing", email="alan@example.com", phone=None, role="member")
    data.update(values)
    with pytest.raises(ServiceError, match=message) as refused:
        invitations.add_person(account.admin, **data)
    assert refused.value.field == field
    db.session.rollback()
    assert people_named("Alan Turing") == 0 and mails("invite") == []


def people_named(name: str) -> int:
    return db.session.scalar(sa.select(sa.func.count(User.id)).where(User.name == name))


def test_someone_already_in_the_account_is_a_form_error(account):
    make_user(account, email="ada@example.com")
    with pytest.raises(ServiceError, match="already a user of this account") as refused:
        invitations.add_person(account.admin, name="Ada Again", email="ADA@example.com")
    assert refused.value.field == "email"


def test_a_person_of_another_account_is_invited_under_the_typed_name(account):
    other = make_account()
    theirs = make_user(other, name="Shared Person", email="shared@example.com")
    password_hash = theirs.user.password_hash
    membership = invitations.add_person(account.admin, name="Another Name",
                                        email="shared@example.com", phone="+33 1 42 68 53 00")
    # The same person (never a duplicate), whose own name, phone and password stay theirs ...
    assert membership.user_id == theirs.user_id
    assert membership.user.name == "Shared Person" and membership.user.phone is None
    assert membership.user.password_hash == password_hash
    assert db.session.scalar(sa.select(sa.func.count(User.id)).where(
        User.email == "shared@example.com")) == 1
    # ... invited like a new address, shown here under what was typed until they accept.
    assert membership.invite_state == "invited" and membership.awaiting
    assert (membership.shown_name, membership.shown_phone) == ("Another Name", "+33142685300")
    assert membership.sort_name == "another name"
    [invite] = [m for m in mails("invite") if m.account_id == account.id]
    assert invite.to_addr == "shared@example.com" and account.name in invite.subject
    text, _html = mail.bodies(invite)
    assert "Another Name" in text and "Shared Person" not in text
    assert mail.HIDDEN_LINK in text  # sealed: they have a password (issue 11, finding 1)
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.added",
                                                          AuditEvent.account_id == account.id))
    assert "linked" not in (event.details or {})


def test_a_known_person_joins_with_their_own_password_and_keeps_their_name(account):
    other = make_account()
    theirs = make_user(other, name="Shared Person", email="shared@example.com")
    membership = invitations.add_person(account.admin, name="Another Name",
                                        email="shared@example.com")
    raw = "a-known-persons-link"
    db.session.execute(sa.update(ActionToken).where(
        ActionToken.user_id == theirs.user_id, ActionToken.account_id == account.id,
        ActionToken.used_at.is_(None)).values(token_hash=tokens.digest(raw)))
    db.session.commit()
    _membership, needs_password = invitations.invitation_details(raw)
    assert needs_password is False  # they give the one they have, never a new one
    with pytest.raises(ServiceError, match="not your password"):
        invitations.accept_invitation(raw, "a wrong but long passphrase 7")
    with pytest.raises(ServiceError, match="Enter your password"):
        invitations.accept_invitation(raw, None)
    assert db.session.get(Membership, membership.id).invite_state == "invited"
    joined = invitations.accept_invitation(raw, PASSWORD)
    assert joined.invite_state == "active" and not joined.awaiting
    assert (joined.shown_name, joined.sort_name) == ("Shared Person", "shared person")


def test_resend_invite_renews_the_link_and_skips_people_who_signed_in(account):
    waiting = [make_user(account, password=None) for _ in range(3)]
    joined = make_user(account)
    age_invitations()
    old_links = [
        db.session.scalar(sa.select(ActionToken.id).where(ActionToken.user_id == m.user_id))
        for m in waiting
    ]
    report = invitations.resend_invites(
        account.admin, Selection(ids=tuple(m.id for m in waiting) + (joined.id,)))
    assert (report.resent, report.skipped) == (3, 1)
    assert str(report) == "Invite resent to 3 users; 1 skipped because they have already signed in."
    for membership, old in zip(waiting, old_links):
        assert live_tokens(membership.user_id) == 1
        assert db.session.get(ActionToken, old).used_at is not None
    assert len(mails("invite")) == 4 + 3
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
        AuditEvent.action == "invitation.resent")) == 3


def test_resend_invite_to_all_matching_acts_on_the_filter_only(account):
    for n in range(4):
        make_user(account, name=f"Night {n}", password=None)
    make_user(account, name="Day Person", password=None)
    age_invitations()
    report = invitations.resend_invites(
        account.admin, Selection(all_matching=True, filter=UserFilter(q="night")))
    assert report.resent == 4
    sent_to = {m.to_addr for m in mails("invite")[5:]}
    assert len(sent_to) == 4 and all("user" in a for a in sent_to)


def test_a_resent_link_lets_the_person_in_and_the_old_one_does_not(account, client, smtp):
    waiting = make_user(account, password=None)
    first = delivered_link(smtp, waiting.user.email, "/invite/")
    age_invitations()
    invitations.resend_invites(account.admin, Selection(ids=(waiting.id,)))
    second = delivered_link(smtp, waiting.user.email, "/invite/")
    assert client.get(first).status_code == 410
    assert client.get(second).status_code == 200


def test_an_empty_resend_selection_says_so(account):
    with pytest.raises(ServiceError, match="Select at least one user"):
        invitations.resend_invites(account.admin, Selection())


def test_a_refused_invitation_marks_invite_failed_and_mails_the_inviting_admin(account, smtp):
    smtp.refuse["nobody@nowhere.example"] = "550 5.1.1 No such user"
    membership = invitations.add_person(account.admin, name="No Body",
                                        email="nobody@nowhere.example")
    report = outbox.deliver_due()
    assert report.failed == 1
    db.session.refresh(membership)
    assert membership.invite_state == "invite_failed"
    assert membership.invite_error.startswith("550")
    listed = users.list_users(account.admin, UserFilter(state="invite_failed")).rows
    assert [(r.name, r.invite_error) for r in listed] == [("No Body", membership.invite_error)]
    let_digests_fall_due()
    outbox.deliver_due()
    [notice] = smtp.to(account.admin.user.email)
    assert "refused by the mail server" in notice.subject
    assert "No Body <nobody@nowhere.example>: 550 5.1.1" in notice.text
    assert f"/admin/participants/users/{membership.id}" in notice.text


def test_a_refusal_goes_to_every_admin_when_the_inviter_is_no_longer_one(account, smtp):
    second = make_user(account, role="admin")
    smtp.refuse["gone@nowhere.example"] = "550 5.1.1 No such user"
    membership = invitations.add_person(second, name="Gone", email="gone@nowhere.example")
    second.role = "member"
    db.session.commit()
    outbox.deliver_due()
    let_digests_fall_due()
    outbox.deliver_due()
    assert len(smtp.to(account.admin.user.email)) == 1
    assert [m for m in smtp.to(second.user.email) if "refused" in m.subject] == []
    db.session.refresh(membership)
    assert membership.invite_state == "invite_failed"


def test_resend_clears_the_failed_state(account, smtp):
    smtp.refuse["typo@nowhere.example"] = "550 5.1.1 No such user"
    membership = invitations.add_person(account.admin, name="Typo", email="typo@nowhere.example")
    outbox.deliver_due()
    invitations.resend_invites(account.admin, Selection(ids=(membership.id,)))
    db.session.refresh(membership)
    assert (membership.invite_state, membership.invite_error) == ("invited", None)


def test_accepting_makes_the_user_active_and_resend_then_skips_them(account, client, smtp):
    waiting = make_user(account, password=None)
    link = delivered_link(smtp, waiting.user.email, "/invite/")
    response = client.post(link, data={"password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    report = invitations.resend_invites(account.admin, Selection(ids=(waiting.id,)))
    assert (report.resent, report.skipped) == (0, 1)
    assert db.session.get(Membership, waiting.id).invite_state == "active"
