"""The audit page's service (issue 15, item 4): the account's trail, filtered, keyset-paged,
exported; the events it needs (failed sign-ins per account, an "added" per imported person,
purges) and the activity e-mail naming what each event concerns."""
import csv
import io
from datetime import date
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import OutboxMessage
from portal.models import utcnow
from portal.services import audit
from portal.services import audit_trail
from portal.services import auth
from portal.services import csv_import
from portal.services import groups
from portal.services import profiles
from portal.services import purge
from portal.services.errors import ServiceError
from portal.services.users import Selection
from tests import builders
from tests.builders import csv_bytes
from tests.builders import make_account
from tests.builders import make_user

Filter = audit_trail.TrailFilter


def walk(actor, trail_filter=Filter(), size=3) -> list[int]:
    """Page through the whole trail, older and older; return the event ids in page order."""
    seen, page = [], audit_trail.trail_page(actor, trail_filter, size=size)
    while True:
        assert len(page.rows) <= size
        seen += [row.id for row in page.rows]
        if page.older is None:
            return seen
        page = audit_trail.trail_page(actor, trail_filter, before=page.older, size=size)


def newest_first(account_id: int, *where) -> list[int]:
    return list(db.session.scalars(
        sa.select(AuditEvent.id).where(AuditEvent.account_id == account_id, *where)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())))


def test_pages_walk_the_whole_trail_newest_first_and_never_another_accounts(account):
    other = make_account()
    for n in range(4):
        make_user(account, name=f"Here {n}")
        make_user(other, name=f"There {n}")
    ids = walk(account.admin)
    assert ids == newest_first(account.id) and len(ids) >= 5
    theirs = set(newest_first(other.id))
    assert theirs and not theirs & set(ids)
    # Newer goes back the way Older came, and an id of another account's trail is ignored.
    second = audit_trail.trail_page(account.admin, Filter(), before=ids[2], size=3)
    back = audit_trail.trail_page(account.admin, Filter(), after=second.rows[0].id, size=3)
    assert [r.id for r in back.rows] == ids[:3] and back.newer is None
    foreign = audit_trail.trail_page(account.admin, Filter(), before=max(theirs), size=3)
    assert [r.id for r in foreign.rows] == ids[:3]


def test_filters_who_whom_what_and_dates(account):
    ana = make_user(account, name="Ana Lima", email="ana@example.com")
    bo = make_user(account, name="Bo Berg", email="bo@example.com")
    group = builders.make_group(account, "Sales")
    groups.add_to_groups(account.admin, [group.id], selection=Selection(ids=[ana.id, bo.id]))
    builders.make_device(ana.user)
    actor = account.admin
    whom_ana = walk(actor, Filter(whom="ana@example.com"))
    assert whom_ana == newest_first(account.id, AuditEvent.subject_user_id == ana.user_id)
    assert walk(actor, Filter(whom="Lima")) == whom_ana  # a part of the name works too
    by_ana = walk(actor, Filter(who="Ana"))
    assert by_ana == newest_first(account.id, AuditEvent.actor_user_id == ana.user_id)
    added = walk(actor, Filter(what="admin"), size=2)
    actions = audit_trail.TOPICS["admin"][1]
    assert added == newest_first(account.id, AuditEvent.action.in_(actions))
    assert walk(actor, Filter(what="group.member_added", whom="Bo")) == newest_first(
        account.id, AuditEvent.action == "group.member_added",
        AuditEvent.subject_user_id == bo.user_id)
    today = utcnow().date()
    assert walk(actor, Filter(since=today, until=today)) == newest_first(account.id)
    assert walk(actor, Filter(until=today - timedelta(days=1))) == []
    nobody = audit_trail.trail_page(actor, Filter(who="Nobody Here"))
    assert nobody.rows == [] and "Nobody in this account matches" in nobody.notice
    with pytest.raises(ServiceError, match="before"):
        audit_trail.trail_page(actor, Filter(since=today, until=today - timedelta(days=1)))
    with pytest.raises(ServiceError, match="Choose what"):
        audit_trail.trail_page(actor, Filter(what="drop table"))


def walk_back(actor, trail_filter, size=3) -> list[int]:
    """Page to the oldest event, then back with Newer; return the ids newest first."""
    page = audit_trail.trail_page(actor, trail_filter, size=size)
    while page.older is not None:
        page = audit_trail.trail_page(actor, trail_filter, before=page.older, size=size)
    seen = [row.id for row in reversed(page.rows)]
    while page.newer is not None:
        page = audit_trail.trail_page(actor, trail_filter, after=page.newer, size=size)
        assert len(page.rows) <= size
        seen += [row.id for row in reversed(page.rows)]
    return seen[::-1]


def test_filters_of_several_values_page_both_ways_in_one_order(account):
    """A topic (many actions) and a part of a name (several people) walk one index per value,
    merged (on PostgreSQL a LATERAL walk over an array of the values): Older and Newer see the
    same events in the same order as one plain query, on both databases."""
    people = [make_user(account, name=f"Ana Lima {n}", email=f"ana{n}@example.com")
              for n in range(4)]
    group = builders.make_group(account, "Sales")
    groups.add_to_groups(account.admin, [group.id],
                         selection=Selection(ids=[p.id for p in people]))
    for person in people[:2]:
        builders.make_device(person.user)
        profiles.send_password_reset(account.admin, person.id)
    actor = account.admin
    actions = audit_trail.TOPICS["admin"][1]
    expected = newest_first(account.id, AuditEvent.action.in_(actions))
    assert len({a for a in db.session.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.id.in_(expected)))}) >= 3
    assert walk(actor, Filter(what="admin"), size=4) == expected
    assert walk_back(actor, Filter(what="admin"), size=4) == expected
    lima = newest_first(account.id, AuditEvent.subject_user_id.in_([p.user_id for p in people]))
    assert walk(actor, Filter(whom="Lima"), size=5) == lima
    assert walk_back(actor, Filter(whom="Lima"), size=5) == lima
    both = newest_first(account.id, AuditEvent.action.in_(actions),
                        AuditEvent.subject_user_id.in_([p.user_id for p in people]))
    assert walk_back(actor, Filter(whom="Lima", what="admin"), size=2) == both


def test_rows_name_the_group_device_and_taskstream_they_concern(account):
    ana = make_user(account, name="Ana Lima")
    group = builders.make_group(account, "Sales", members=[ana])
    builders.make_taskstream(account, "Onboarding", [("Sign contract", group.id)])
    builders.make_device(ana.user)
    rows = audit_trail.trail_page(account.admin, Filter()).rows
    concerns = {row.action: row.concerns for row in rows}
    assert concerns["group.created"] == "group “Sales”"
    assert concerns["group.member_added"] == "group “Sales”"
    assert concerns["taskstream.created"] == "taskstream “Onboarding”"
    assert concerns["login"] == "device “Chrome 131 on Mac OS X”"


def test_failed_sign_ins_show_in_each_account_the_person_joined_and_no_other(account):
    other = make_account()
    inviting = make_account()
    ana = make_user(account, email="ana@example.com")
    make_user(other, email="ana@example.com")
    make_user(inviting, email="ana@example.com", password=None)  # invited, not accepted
    with pytest.raises(ServiceError):
        auth.authenticate("ana@example.com", "wrong password")
    failed = AuditEvent.action == "login.failed"
    assert len(newest_first(account.id, failed)) == 1
    assert len(newest_first(other.id, failed)) == 1
    assert newest_first(inviting.id, failed) == []
    rows = audit_trail.trail_page(account.admin, Filter(what="failures")).rows
    assert [r.action for r in rows] == ["login.failed"] and "ana@example.com" in rows[0].whom
    # An unknown address still writes its one event, in no account.
    with pytest.raises(ServiceError):
        auth.authenticate("nobody@example.com", "wrong password")
    assert db.session.scalar(sa.select(sa.func.count()).where(
        failed, AuditEvent.account_id.is_(None))) == 1
    assert ana  # (the member whose trail this is)


def test_an_import_records_an_added_event_per_person(account):
    data = csv_bytes([("Ana Lima", "ana@example.com", "Sales"),
                      ("Bo Berg", "bo@example.com", "")])
    result = csv_import.import_csv(account.admin, data)
    added = db.session.execute(sa.select(AuditEvent.subject_label, AuditEvent.details).where(
        AuditEvent.account_id == account.id, AuditEvent.action == "user.added")).all()
    assert sorted(label for label, _d in added) == [
        "Ana Lima <ana@example.com>", "Bo Berg <bo@example.com>"]
    assert all(d["import_id"] == result.import_id for _l, d in added)
    rows = audit_trail.trail_page(account.admin, Filter(what="imports")).rows
    assert {r.action for r in rows} == {"user.added", "users.imported"}


@pytest.mark.config(RETENTION_DAYS=1)
def test_a_purge_is_in_the_trail_of_the_account_it_purged(account):
    gone = make_user(account)
    builders.delete_users(account, gone)
    builders.backdate_deletion(gone, utcnow() - timedelta(days=2))
    purge.purge_expired()
    rows = audit_trail.trail_page(account.admin, Filter(what="purges")).rows
    assert [(r.action, r.who) for r in rows] == [("users.purged", purge.PURGE_ACTOR)]
    assert "count: 1" in rows[0].details


def test_the_export_streams_the_filtered_trail_as_safe_csv_and_is_audited(account):
    make_user(account, name="=HYPERLINK(1)", email="ana@example.com")
    make_user(account, name="Bo Berg")
    export = audit_trail.export_trail(account.admin, Filter(whom="ana@example.com"))
    assert export.filename == f"audit-{account.name.lower().replace(' ', '-')}-{date.today()}.csv"
    text = b"".join(export.chunks).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(audit_trail.EXPORT_COLUMNS)
    assert [r[2] for r in rows[1:]] == ["user.added"]
    assert rows[1][3].startswith("'=HYPERLINK(1)")
    exported = newest_first(account.id, AuditEvent.action == "audit.exported")
    assert len(exported) == 1


def test_the_export_walks_past_one_batch(account, monkeypatch):
    monkeypatch.setattr(audit_trail, "EXPORT_BATCH", 2)
    for n in range(3):
        make_user(account, name=f"Person {n}")
    export = audit_trail.export_trail(account.admin, Filter())
    expected = newest_first(account.id)  # its own "audit.exported" included
    text = b"".join(export.chunks).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert len(rows) == len(expected) == 5 and rows[0][2] == "audit.exported"


def test_the_activity_email_names_the_group_device_and_taskstream(account, smtp):
    ana = make_user(account, name="Ana Lima", email="ana@example.com")
    group = builders.make_group(account, "Sales", members=[ana])
    builders.make_taskstream(account, "Onboarding", [("Sign contract", group.id)])
    builders.make_device(ana.user)
    profiles.send_activity_report(account.admin, ana.id, 7)
    profiles.send_activity_report(account.admin, account.admin.id, 7)
    bodies = dict(db.session.execute(sa.select(OutboxMessage.to_addr, OutboxMessage.body_text)
                                     .where(OutboxMessage.kind == "activity_report")).all())
    body = bodies["ana@example.com"]
    assert f"group member added: group “Sales” (by {audit.label(account.admin.user)})" in body
    assert "login: device “Chrome 131 on Mac OS X”" in body
    assert "taskstream created: taskstream “Onboarding”" in bodies[account.admin.user.email]
    html = db.session.scalars(sa.select(OutboxMessage.body_html).where(
        OutboxMessage.to_addr == "ana@example.com",
        OutboxMessage.kind == "activity_report")).one()
    assert "group “Sales”" in html


def test_the_trail_names_someone_invited_from_elsewhere_as_the_account_typed(account):
    other = make_account()
    make_user(other, name="Ana Real", email="ana@example.com")
    make_user(account, name="Typed Name", email="ana@example.com", password=None)
    rows = audit_trail.trail_page(account.admin, Filter(whom="ana@example.com")).rows
    assert [r.whom for r in rows] == ["Typed Name <ana@example.com>"]
    assert "Ana Real" not in b"".join(
        audit_trail.export_trail(account.admin, Filter()).chunks).decode()
