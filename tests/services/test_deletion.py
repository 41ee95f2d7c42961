"""Deletion (GDPR): soft-delete and its blocked cases, restore, and the retention purge."""
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import ActionToken
from portal.models import AuditEvent
from portal.models import Device
from portal.models import GroupMember
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import User
from portal.models import utcnow
from portal.services import accounts
from portal.services import auth
from portal.services import deletion
from portal.services import purge
from portal.services import outbox
from portal.services import tokens
from portal.services import users
from portal.services.errors import NotFound
from portal.services.errors import ServiceError
from portal.services.users import Selection
from portal.services.users import UserFilter
from tests.builders import PASSWORD
from tests.builders import backdate_deletion
from tests.builders import delete_users
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user

DAY = timedelta(days=1)


def fresh(membership: Membership) -> Membership | None:
    """Re-read a membership from the database (None once purged)."""
    [ident] = sa.inspect(membership).identity
    db.session.expire_all()
    return db.session.get(Membership, ident)


def live_devices(user_id: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(Device.id)).where(Device.user_id == user_id,
                                                  Device.revoked_at.is_(None))
    )


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


# --- delete ---------------------------------------------------------------------------------


def test_deleting_soft_deletes_the_membership_and_hides_it_from_lists_and_selections(account):
    alice = make_user(account, name="Alice Able")
    bob = make_user(account, name="Bob Baker")

    report = delete_users(account, alice)

    assert report.deleted == 1 and report.blocked == []
    assert fresh(alice).deleted_at is not None
    assert fresh(alice).deleted_by_id == account.admin.user_id
    page = users.list_users(account.admin)
    assert [m.name for m in page.rows] == ["Admin " + account.admin.user.name.split()[-1],
                                                "Bob Baker"]
    assert page.total == 2
    matching = users.selected_ids(account.admin, Selection(all_matching=True,
                                                           filter=UserFilter(q="alice")))
    assert list(db.session.scalars(matching)) == []
    assert fresh(bob).deleted_at is None


def test_deleting_keeps_the_row_its_groups_and_its_role(account):
    alice = make_user(account, role="admin")
    group = make_group(account, "Drivers", [alice])

    delete_users(account, alice)

    kept = fresh(alice)
    assert kept.role == "admin"
    assert db.session.scalar(
        sa.select(GroupMember.group_id).where(GroupMember.membership_id == alice.id)
    ) == group.id


def test_deleting_writes_one_audit_event_per_user(account):
    people = [make_user(account) for _ in range(3)]

    delete_users(account, *people)

    deleted = events("user.deleted")
    assert sorted(e.subject_user_id for e in deleted) == sorted(m.user_id for m in people)
    assert {e.actor_user_id for e in deleted} == {account.admin.user_id}
    assert {e.account_id for e in deleted} == {account.id}
    assert all(e.subject_label.endswith(">") for e in deleted)


def test_deleting_ends_every_device_and_link_of_someone_with_no_other_account(account):
    alice = make_user(account)
    auth.sign_in(alice.user, auth.Client(kind="web"))
    auth.sign_in(alice.user, auth.Client(kind="app", name="Phone"), account.id)
    reset = tokens.issue(alice.user, "reset", DAY)
    db.session.commit()

    delete_users(account, alice)

    assert live_devices(alice.user_id) == 0
    assert set(db.session.scalars(sa.select(Device.revoked_reason).where(
        Device.user_id == alice.user_id))) == {"deleted"}
    with pytest.raises(tokens.LinkInvalid):
        tokens.find(reset, "reset")
    with pytest.raises(ServiceError):
        auth.authenticate(alice.user.email, PASSWORD)


def test_deleting_withdraws_a_pending_invitation_and_its_unsent_mail(account):
    invited = make_user(account, password=None)
    mail = db.session.scalar(sa.select(OutboxMessage).where(
        OutboxMessage.membership_id == invited.id))
    assert mail.state == "pending"

    delete_users(account, invited)

    db.session.refresh(mail)
    assert mail.state == "failed" and mail.last_error == deletion.CANCELLED
    assert db.session.scalar(sa.select(sa.func.count(ActionToken.id)).where(
        ActionToken.user_id == invited.user_id, ActionToken.used_at.is_(None))) == 0


def test_a_person_in_two_accounts_deleted_in_one_keeps_full_access_to_the_other(account):
    other = make_account("Other")
    alice_here = make_user(account, email="alice@example.com")
    alice_there = make_user(other, email="alice@example.com")
    auth.sign_in(alice_here.user, auth.Client(kind="web"), other.id)

    delete_users(account, alice_here)

    assert live_devices(alice_here.user_id) == 1
    assert auth.authenticate("alice@example.com", PASSWORD).id == alice_there.user_id
    assert fresh(alice_there).deleted_at is None


def test_deleting_yourself_is_blocked(account):
    report = delete_users(account, account.admin)

    assert report.deleted == 0
    assert [(b.kind, b.membership_id) for b in report.blocked] == [("self", account.admin.id)]
    assert "yourself" in report.blocked[0].reason
    assert fresh(account.admin).deleted_at is None


def test_deleting_the_last_admin_is_blocked(account):
    operator = accounts.operator(account.name)

    report = delete_users(account, account.admin, actor=operator)

    assert report.deleted == 0
    assert [b.kind for b in report.blocked] == ["last_admin"]
    assert "last admin" in report.blocked[0].reason
    assert fresh(account.admin).deleted_at is None


def test_deleting_every_admin_at_once_is_blocked_but_one_of_two_is_not(account):
    second = make_user(account, role="admin")
    operator = accounts.operator(account.name)

    both = delete_users(account, account.admin, second, actor=operator)
    assert both.deleted == 0 and {b.kind for b in both.blocked} == {"last_admin"}

    one = delete_users(account, second, actor=operator)
    assert one.deleted == 1 and one.blocked == []


def test_two_admins_deleting_each_other_cannot_both_succeed(account):
    second = make_user(account, role="admin")
    assert delete_users(account, second).deleted == 1

    # The second admin's request was already past the door: the rule still holds.
    late = delete_users(account, account.admin, actor=fresh(second))

    assert late.deleted == 0 and [b.kind for b in late.blocked] == ["last_admin"]
    assert fresh(account.admin).deleted_at is None


def test_deleting_the_only_member_of_a_group_assigned_to_a_step_is_blocked(account):
    driver = make_user(account, name="Dana Driver")
    group = make_group(account, "Drivers", [driver])
    stream = make_taskstream(account, "Delivery", [("Deliver", group.id)])

    report = delete_users(account, driver)

    assert report.deleted == 0
    [blocked] = report.blocked
    assert blocked.kind == "only_member"
    assert blocked.group_id == group.id and blocked.taskstream_id == stream.id
    assert "Drivers" in blocked.reason and "Deliver" in blocked.reason
    assert fresh(driver).deleted_at is None


def test_deleting_every_member_of_an_assigned_group_blocks_them_but_one_of_two_goes(account):
    a, b = make_user(account), make_user(account)
    group = make_group(account, "Drivers", [a, b])
    make_taskstream(account, "Delivery", [("Deliver", group.id)])

    both = delete_users(account, a, b)
    assert both.deleted == 0 and {x.kind for x in both.blocked} == {"only_member"}

    one = delete_users(account, a)
    assert one.deleted == 1 and one.blocked == []


def test_a_group_assigned_to_no_step_does_not_block(account):
    loner = make_user(account)
    make_group(account, "Unassigned", [loner])

    assert delete_users(account, loner).deleted == 1


def test_a_member_kept_for_one_group_keeps_another_group_populated(account):
    x, y = make_user(account), make_user(account)
    only_x = make_group(account, "Only X", [x])
    x_and_y = make_group(account, "X and Y", [x, y])
    make_taskstream(account, "Flow", [("One", only_x.id), ("Two", x_and_y.id)])

    report = delete_users(account, x, y)

    assert [b.membership_id for b in report.blocked] == [x.id]
    assert report.deleted == 1 and fresh(y).deleted_at is not None


def test_a_bulk_delete_deletes_the_others_and_leaves_each_blocked_one_untouched(account):
    driver = make_user(account, name="Dana Driver")
    group = make_group(account, "Drivers", [driver])
    make_taskstream(account, "Delivery", [("Deliver", group.id)])
    others = [make_user(account) for _ in range(4)]
    auth.sign_in(driver.user, auth.Client(kind="web"))

    report = delete_users(account, account.admin, driver, *others)

    assert report.deleted == 4
    assert sorted(b.kind for b in report.blocked) == ["only_member", "self"]
    assert all(fresh(m).deleted_at is not None for m in others)
    assert fresh(driver).deleted_at is None and live_devices(driver.user_id) == 1
    assert {e.subject_user_id for e in events("user.deleted")} == {m.user_id for m in others}


def test_ids_from_another_account_are_never_acted_on(account):
    other = make_account("Other")
    stranger = make_user(other)
    mine = make_user(account)

    report = deletion.delete_users(account.admin, Selection(ids=[stranger.id, mine.id, 10**9]))

    assert report.deleted == 1
    assert fresh(stranger).deleted_at is None
    assert {e.subject_user_id for e in events("user.deleted")} == {mine.user_id}


def test_deleting_all_matching_a_filter_deletes_exactly_the_matches(account):
    smiths = [make_user(account, name=f"Sam Smith {n}") for n in range(3)]
    jones = make_user(account, name="Jo Jones")

    report = deletion.delete_users(
        account.admin, Selection(all_matching=True, filter=UserFilter(q="smith"))
    )

    assert report.deleted == 3
    assert all(fresh(m).deleted_at is not None for m in smiths)
    assert fresh(jones).deleted_at is None


def test_deleting_the_same_users_twice_does_nothing_the_second_time(account):
    alice = make_user(account)
    delete_users(account, alice)
    first = fresh(alice).deleted_at

    again = delete_users(account, alice)

    assert again.deleted == 0 and again.blocked == []
    assert fresh(alice).deleted_at == first
    assert len(events("user.deleted")) == 1


def test_plan_delete_predicts_without_changing_anything(account):
    alice = make_user(account, name="Alice Able")

    plan = deletion.plan_delete(account.admin, Selection(ids=[alice.id, account.admin.id]))

    assert plan.selected == 2 and plan.deletable == [alice.id]
    assert [b.kind for b in plan.blocked] == ["self"]
    assert "Alice Able" in plan.sample
    assert fresh(alice).deleted_at is None


# --- restore --------------------------------------------------------------------------------


def test_restore_brings_back_the_membership_its_groups_and_its_role(account):
    alice = make_user(account, role="admin")
    group = make_group(account, "Drivers", [alice])
    delete_users(account, alice)

    report = deletion.restore_users(account.admin, [alice.id])

    assert report.restored == 1 and report.refused == [] and report.unrecoverable == 0
    back = fresh(alice)
    assert back.deleted_at is None and back.deleted_by_id is None and back.role == "admin"
    assert list(db.session.scalars(sa.select(GroupMember.group_id).where(
        GroupMember.membership_id == alice.id))) == [group.id]
    assert [e.subject_user_id for e in events("user.restored")] == [alice.user_id]


def test_a_restored_person_can_sign_in_again(account):
    alice = make_user(account)
    delete_users(account, alice)
    with pytest.raises(ServiceError):
        auth.authenticate(alice.user.email, PASSWORD)

    deletion.restore_users(account.admin, [alice.id])

    assert auth.authenticate(alice.user.email, PASSWORD).id == alice.user_id


def test_restore_is_refused_after_the_retention_period(account):
    alice = make_user(account)
    delete_users(account, alice)
    backdate_deletion(alice, utcnow() - 31 * DAY)

    report = deletion.restore_users(account.admin, [alice.id])

    assert report.restored == 0
    assert "no longer recoverable" in report.refused[0].reason
    assert fresh(alice).deleted_at is not None


def test_restore_after_the_purge_says_no_longer_recoverable(account):
    alice = make_user(account)
    alice_id, email = alice.id, alice.user.email
    delete_users(account, alice)
    purge.purge_expired(now=utcnow() + 31 * DAY)

    report = deletion.restore_users(account.admin, [alice_id])
    assert report.restored == 0 and report.unrecoverable == 1
    with pytest.raises(NotFound, match="no longer recoverable"):
        deletion.restore_by_email(account.admin, email)


def test_restore_is_refused_when_the_email_is_now_used_by_another_live_person(account):
    alice = make_user(account, email="alice@example.com")
    delete_users(account, alice)
    # Raw: e-mails are unique and normalised, so only legacy data can hold a look-alike.
    db.session.execute(sa.insert(User).values(
        email="Alice@Example.com", name="Other Alice", version=1, must_change_password=False,
        failed_logins=0, created_at=utcnow()))
    other_id = db.session.scalar(sa.select(User.id).where(User.name == "Other Alice"))
    db.session.execute(sa.insert(Membership).values(
        account_id=account.id, user_id=other_id, role="member", invite_state="active",
        created_at=utcnow()))
    db.session.commit()

    report = deletion.restore_users(account.admin, [alice.id])

    assert report.restored == 0
    assert "alice@example.com" in report.refused[0].reason
    assert fresh(alice).deleted_at is not None


def test_restore_ignores_ids_of_other_accounts_and_of_live_users(account):
    other = make_account("Other")
    stranger = make_user(other)
    delete_users(other, stranger)
    live = make_user(account)

    report = deletion.restore_users(account.admin, [stranger.id, live.id])

    assert report.restored == 0 and report.unrecoverable == 2
    assert fresh(stranger).deleted_at is not None


def test_restore_by_email_explains_a_user_who_is_not_deleted(account):
    alice = make_user(account)
    with pytest.raises(ServiceError, match="not deleted"):
        deletion.restore_by_email(account.admin, alice.user.email)
    with pytest.raises(ServiceError, match="not valid"):
        deletion.restore_by_email(account.admin, "not an address")


def test_the_deleted_list_shows_who_when_by_whom_and_the_purge_date(account):
    alice = make_user(account, name="Alice Able")
    make_user(account, name="Bob Baker")
    delete_users(account, alice)

    page = deletion.list_deleted(account.admin)

    assert page.total == 1
    [row] = page.rows
    assert row.membership.user.name == "Alice Able"
    assert row.deleted_by == account.admin.user.name
    assert row.purge_at == row.membership.deleted_at + timedelta(days=30)


@pytest.mark.config(RETENTION_DAYS=7)
def test_the_retention_period_is_a_setting(account):
    alice = make_user(account)
    delete_users(account, alice)
    deleted_at = fresh(alice).deleted_at

    assert deletion.list_deleted(account.admin).rows[0].purge_at == deleted_at + 7 * DAY
    assert purge.purge_expired(now=deleted_at + 7 * DAY + timedelta(seconds=1)).memberships == 1


# --- purge ----------------------------------------------------------------------------------


def test_purge_keeps_a_deletion_until_its_retention_ends_to_the_second(account):
    alice = make_user(account)
    delete_users(account, alice)
    deleted_at = fresh(alice).deleted_at
    limit = deleted_at + timedelta(days=30)

    early = purge.purge_expired(now=limit - timedelta(seconds=1))
    assert early.memberships == 0 and early.people == 0
    assert fresh(alice) is not None

    late = purge.purge_expired(now=limit + timedelta(seconds=1))
    assert late.memberships == 1 and late.people == 1
    assert fresh(alice) is None


def test_purge_erases_a_person_left_with_no_membership_and_everything_of_theirs(account):
    alice = make_user(account)
    group = make_group(account, "Drivers", [alice])
    auth.sign_in(alice.user, auth.Client(kind="web"))
    tokens.issue(alice.user, "reset", DAY)
    db.session.commit()
    user_id = alice.user_id
    delete_users(account, alice)

    report = purge.purge_expired(now=utcnow() + 31 * DAY)

    assert (report.memberships, report.group_memberships, report.people) == (1, 1, 1)
    assert report.devices == 1 and report.tokens >= 1 and report.mails >= 1
    assert db.session.get(User, user_id) is None
    for model in (Device, ActionToken, OutboxMessage):
        assert db.session.scalar(
            sa.select(sa.func.count()).select_from(model).where(model.user_id == user_id)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GroupMember).where(
        GroupMember.group_id == group.id)) == 0


def test_purge_removes_only_the_membership_of_someone_in_another_account(account):
    other = make_account("Other")
    here = make_user(account, email="alice@example.com")
    there = make_user(other, email="alice@example.com")
    auth.sign_in(here.user, auth.Client(kind="web"), other.id)
    delete_users(account, here)

    report = purge.purge_expired(now=utcnow() + 31 * DAY)

    assert (report.memberships, report.people) == (1, 0)
    assert fresh(here) is None and fresh(there).deleted_at is None
    assert live_devices(there.user_id) == 1
    assert auth.authenticate("alice@example.com", PASSWORD).id == there.user_id
    labels = set(db.session.scalars(sa.select(AuditEvent.subject_label).where(
        AuditEvent.subject_user_id == there.user_id)))
    assert any("alice@example.com" in label for label in labels)


def test_a_live_membership_inside_a_purge_batch_keeps_its_person(account):
    other = make_account("Other")
    first = make_user(account, email="first@example.com")
    alice_there = make_user(other, email="alice@example.com")
    alice_here = make_user(account, email="alice@example.com")
    last = make_user(account, email="last@example.com")
    assert first.id < alice_there.id < last.id  # the batch's id range spans the live one
    delete_users(account, first, alice_here, last)

    report = purge.purge_expired(now=utcnow() + 31 * DAY)

    assert (report.memberships, report.people) == (3, 2)
    assert fresh(alice_there).deleted_at is None


def test_purged_audit_events_keep_their_count_under_a_pseudonym(account):
    alice = make_user(account)
    user_id = alice.user_id
    auth.sign_in(alice.user, auth.Client(kind="app", name="Alice's phone"), account.id)
    delete_users(account, alice)
    before = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))

    purge.purge_expired(now=utcnow() + 31 * DAY)

    # Every event stays, and the purge adds its own (what it took from the account, no name).
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id))) == before + 1
    assert db.session.scalars(sa.select(AuditEvent.details).where(
        AuditEvent.action == "users.purged")).one()["count"] == 1
    label = f"deleted user #{user_id}"
    about = list(db.session.scalars(sa.select(AuditEvent).where(
        sa.or_(AuditEvent.subject_label == label, AuditEvent.actor_label == label))))
    assert {e.action for e in about} >= {"user.added", "login", "user.deleted"}
    assert all(e.subject_user_id is None for e in about if e.subject_label == label)
    login = next(e for e in about if e.action == "login")
    assert login.actor_label == label and "phone" not in json.dumps(login.details)


def occurrences(*needles: str) -> list[str]:
    """Return 'table' for every stored value anywhere in the database that holds a needle.

    Every table the database has, not only the models' (search indexes, their shadow tables),
    every column, text and JSON as stored (JSON escapes non-ASCII) and bytes as UTF-8.
    """
    forms = {n.lower() for n in needles} | {json.dumps(n)[1:-1].lower() for n in needles}
    connection = db.session.connection()
    found = []
    for table in sa.inspect(connection).get_table_names():
        for row in connection.exec_driver_sql(f'SELECT * FROM "{table}"'):
            for value in row:
                if isinstance(value, bytes | memoryview):
                    value = bytes(value).decode("utf-8", errors="replace")
                text = json.dumps(value) if isinstance(value, dict | list) else str(value or "")
                if any(form in text.lower() for form in forms):
                    found.append(table)
    return found


def test_a_purged_person_leaves_no_email_name_or_address_in_any_table(app, account, smtp):
    name, email, ip = "Zoë Ångström-Xu", "zoe.xu@example.org", "203.0.113.77"
    smtp.refuse[email] = f"550 5.1.1 <{email}>: no such user"
    zoe = make_user(account, name=name, email=email, password=None)
    outbox.deliver_due()  # refused: the admin gets a notice naming her, the event quotes the reply
    from portal.services import passwords

    passwords.store_password(zoe.user, PASSWORD)
    db.session.commit()
    client = app.test_client()
    assert client.login(email, environ_base={"REMOTE_ADDR": ip}).status_code == 302
    assert client.login(email, "wrong password", environ_base={"REMOTE_ADDR": ip})
    group = make_group(account, "Zoë's team", [zoe])
    make_user(account, name="Someone Else", group_ids=[group.id])
    assert occurrences(name, email, ip)
    user_id = zoe.user_id
    delete_users(account, zoe)

    purge.purge_expired(now=utcnow() + 31 * DAY)

    assert occurrences(name, email, ip) == []
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
        AuditEvent.subject_label == f"deleted user #{user_id}")) >= 3


def test_purge_is_idempotent(account):
    for _ in range(3):
        delete_users(account, make_user(account))
    later = utcnow() + 31 * DAY

    first = purge.purge_expired(now=later)
    second = purge.purge_expired(now=later)

    assert (first.memberships, first.people) == (3, 3)
    assert (second.memberships, second.people, second.audit_events) == (0, 0, 0)


def test_a_dry_run_counts_exactly_what_the_purge_then_does(account):
    other = make_account("Other")
    shared = make_user(account, email="shared@example.com")
    make_user(other, email="shared@example.com")
    gone = [make_user(account) for _ in range(2)]
    make_group(account, "Team", [shared, *gone])
    delete_users(account, shared, *gone)
    later = utcnow() + 31 * DAY
    before = db.session.scalar(sa.select(sa.func.count(Membership.id)))

    dry = purge.purge_expired(now=later, dry_run=True)

    assert db.session.scalar(sa.select(sa.func.count(Membership.id))) == before
    real = purge.purge_expired(now=later)
    assert dry.dry_run and not real.dry_run
    counted = ("memberships", "group_memberships", "people", "audit_events", "devices",
               "tokens", "mails")
    assert {k: getattr(dry, k) for k in counted} == {k: getattr(real, k) for k in counted}
    assert (real.memberships, real.group_memberships, real.people) == (3, 3, 2)
    assert str(dry).startswith("Would purge 3 memberships")


def test_a_purge_killed_half_way_is_finished_by_running_it_again(account, monkeypatch):
    people = [make_user(account) for _ in range(5)]
    user_ids = [m.user_id for m in people]
    delete_users(account, *people)
    later = utcnow() + 31 * DAY
    real_erase = purge._erase_people
    calls = []

    def dies_in_the_third_batch(candidates, report):
        calls.append(candidates)
        real_erase(candidates, report)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed mid-transaction, after the work, before commit

    monkeypatch.setattr(purge, "_erase_people", dies_in_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        purge.purge_expired(now=later, batch=2)
    db.session.rollback()
    monkeypatch.undo()

    left = list(db.session.scalars(sa.select(Membership.user_id).where(
        Membership.deleted_at.is_not(None))))
    assert len(left) == 1  # two batches of two committed whole; the third rolled back whole
    assert db.session.get(User, left[0]) is not None
    report = purge.purge_expired(now=later)
    assert (report.memberships, report.people) == (1, 1)
    assert all(db.session.get(User, user_id) is None for user_id in user_ids)


def test_purge_erases_people_who_have_no_membership_for_any_other_reason(account):
    db.session.add(User(email="stray@example.com", name="Stray Person"))
    db.session.commit()

    report = purge.purge_expired()

    assert report.people == 1
    assert db.session.scalar(sa.select(User.id).where(User.email == "stray@example.com")) is None


def test_a_restore_before_the_purge_wins_and_the_purge_leaves_it(account):
    alice = make_user(account)
    delete_users(account, alice)
    deletion.restore_users(account.admin, [alice.id])

    report = purge.purge_expired(now=utcnow() + 31 * DAY)

    assert report.memberships == 0 and fresh(alice).deleted_at is None


def test_purge_rejects_a_batch_size_below_one(app):
    with pytest.raises(ServiceError):
        purge.purge_expired(batch=0)
