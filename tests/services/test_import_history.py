"""Import history and Undo import (issue 13, item 8)."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Group
from portal.models import Membership
from portal.models import User
from portal.models import UserImport
from portal.services import csv_import
from portal.services import deletion
from portal.services import import_history
from portal.services.errors import ServiceError
from tests.builders import csv_bytes
from tests.builders import group_names_of
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user


def live_emails(account) -> set[str]:
    db.session.expire_all()
    return set(db.session.scalars(
        sa.select(User.email).join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account.id, Membership.deleted_at.is_(None))))


def test_every_import_is_recorded_and_undo_puts_everything_back(account):
    ana = make_user(account, name="Ana Old", email="ana@example.com")
    make_group(account, "Sales", members=[ana])
    before = live_emails(account)
    data = csv_bytes([("Ana Lima", "ana@example.com", "Sales; Support", "+44 20 7946 0958"),
                      ("Bo Berg", "bo@example.com", "Support; Night", ""),
                      ("Cy Chen", "cy@example.com", "", "")],
                     header=("Full Name", "Email", "Groups", "Phone"))
    result = csv_import.import_csv(account.admin, data, update=True, filename="people.csv")
    [line] = import_history.list_imports(account.admin)
    assert (line.id, line.filename, line.actor_name, line.source) == (
        result.import_id, "people.csv", account.admin.user.name, "web")
    assert line.summary == result.summary() and line.can_undo
    assert b"bo@example.com,imported" in import_history.report(account.admin, line.id)[1]

    plan = import_history.plan_undo(account.admin, line.id)
    assert (plan.remove, plan.group_memberships, plan.groups, plan.restore) == (
        2, 3, ["Night", "Support"], 1)
    assert "remove 2 people it added" in plan.summary()
    report = import_history.undo_import(account.admin, line.id)
    assert (report.removed, report.group_memberships, report.groups_deleted, report.restored) \
        == (2, 3, ["Night", "Support"], 1)
    assert live_emails(account) == before
    ana_now = db.session.scalar(sa.select(User).where(User.email == "ana@example.com"))
    assert (ana_now.name, ana_now.phone) == ("Ana Old", None)
    assert group_names_of("ana@example.com") == {"Sales"}
    assert set(db.session.scalars(sa.select(Group.name))) == {"Sales"}
    # The people it added are deleted the usual way: restorable from Deleted users.
    deleted = deletion.list_deleted(account.admin)
    assert {row.membership.user.email for row in deleted.rows} == {"bo@example.com",
                                                                   "cy@example.com"}
    [line] = import_history.list_imports(account.admin)
    assert line.undone_at is not None and not line.can_undo
    with pytest.raises(ServiceError, match="already undone"):
        import_history.undo_import(account.admin, line.id)


def test_undo_leaves_whom_a_delete_would_leave_and_says_so(account):
    data = csv_bytes([("Ana Lima", "ana@example.com", "Drivers"),
                      ("Bo Berg", "bo@example.com", "Office")])
    result = csv_import.import_csv(account.admin, data, invite=False)
    drivers = db.session.scalar(sa.select(Group).where(Group.name == "Drivers"))
    make_taskstream(account, "Delivery", [("Load", drivers.id)])
    plan = import_history.plan_undo(account.admin, result.import_id)
    assert (plan.remove, [b.name for b in plan.blocked], plan.groups) == (
        1, ["Ana Lima"], ["Office"])
    report = import_history.undo_import(account.admin, result.import_id)
    assert report.removed == 1 and report.blocked[0].kind == "only_member"
    assert "ana@example.com" in live_emails(account)
    assert "bo@example.com" not in live_emails(account)
    assert group_names_of("ana@example.com") == {"Drivers"}
    assert set(db.session.scalars(sa.select(Group.name))) == {"Drivers"}


def test_undo_of_an_import_that_linked_people_of_another_account(app, account):
    other = make_account("Other")
    make_user(other, name="Dee Dunn", email="dee@example.com")
    data = csv_bytes([("Dee Dunn", "dee@example.com", ""), ("Eve", "eve@example.com", "")])
    result = csv_import.import_csv(account.admin, data, invite=False)
    assert result.imported == 2
    import_history.undo_import(account.admin, result.import_id)
    assert not {"dee@example.com", "eve@example.com"} & live_emails(account)
    assert "dee@example.com" in live_emails(other)


def test_another_accounts_import_is_not_found_and_old_imports_stay(app, account):
    result = csv_import.import_csv(account.admin, csv_bytes([("Ana", "ana@example.com", "")]),
                                   invite=False)
    other = make_account("Other")
    assert import_history.list_imports(other.admin) == []
    with pytest.raises(ServiceError) as error:
        import_history.plan_undo(other.admin, result.import_id)
    assert error.value.status == 404
    record = db.session.get(UserImport, result.import_id)
    record.created_at -= timedelta(days=import_history.UNDO_DAYS, minutes=1)
    db.session.commit()
    with pytest.raises(ServiceError, match="30 days"):
        import_history.undo_import(account.admin, result.import_id)
    assert "ana@example.com" in live_emails(account)
