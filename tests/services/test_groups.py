"""Groups: the one way to add users, removal and deletion rules, names, lists and the picker."""
import threading
import time

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Group
from portal.models import GroupMember
from portal.models import utcnow
from portal.services import groups
from portal.services.errors import NotFound
from portal.services.errors import ServiceError
from portal.services.users import Selection
from portal.services.users import UserFilter
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user


def member_ids(group) -> set[int]:
    return set(db.session.scalars(
        sa.select(GroupMember.membership_id).where(GroupMember.group_id == group.id)
    ))


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    ))


# --- adding --------------------------------------------------------------------------------


def test_adding_selected_users_to_several_groups_skips_those_already_in(account):
    ana, bo, cy = (make_user(account) for _ in range(3))
    red = make_group(account, "Red", members=[ana])
    blue = make_group(account, "Blue")
    result = groups.add_to_groups(account.admin, [red.id, blue.id],
                                  Selection(ids=(ana.id, bo.id, cy.id)))
    assert result.selected == 3
    assert result.added == 5
    assert result.skipped == 1
    assert member_ids(red) == member_ids(blue) == {ana.id, bo.id, cy.id}


def test_every_addition_is_audited_per_person_and_group(account):
    ana, bo = make_user(account), make_user(account)
    red = make_group(account, "Red", members=[ana])
    events_before = len(events("group.member_added"))
    groups.add_to_groups(account.admin, [red.id], Selection(ids=(ana.id, bo.id)))
    added = events("group.member_added")[events_before:]
    assert [(e.subject_user_id, e.details["group"]) for e in added] == [(bo.user_id, "Red")]
    event = added[0]
    assert event.actor_user_id == account.admin.user_id
    assert event.subject_label == f"{bo.user.name} <{bo.user.email}>"
    assert event.account_id == account.id and event.created_at <= utcnow()


def test_all_matching_adds_the_whole_filtered_set(account):
    ana = make_user(account, name="Ana Alpha")
    make_user(account, name="Bo Beta")
    anna = make_user(account, name="Anna Gamma")
    red = make_group(account, "Red")
    result = groups.add_to_groups(
        account.admin, [red.id], Selection(all_matching=True, filter=UserFilter(q="an"))
    )
    assert result.added == 2
    assert member_ids(red) == {ana.id, anna.id}


def test_a_new_group_can_be_created_on_the_spot_while_adding(account):
    ana = make_user(account)
    red = make_group(account, "Red")
    result = groups.add_to_groups(account.admin, [red.id], Selection(ids=(ana.id,)),
                                  new_group_name="  Night   shift ")
    assert result.created.name == "Night shift"
    assert member_ids(result.created) == {ana.id}
    assert member_ids(red) == {ana.id}
    assert events("group.created")[-1].details["name"] == "Night shift"


def test_new_group_members_go_through_add_to_groups(account):
    ana, bo = make_user(account), make_user(account)
    group = groups.create_group(account.admin, "Reviewers", [ana.id, bo.id])
    assert member_ids(group) == {ana.id, bo.id}
    assert {e.subject_user_id for e in events("group.member_added")} >= {ana.user_id, bo.user_id}


def test_a_new_group_may_start_empty(account):
    group = groups.create_group(account.admin, "Empty for now")
    assert member_ids(group) == set()


def test_users_of_another_account_are_ignored(account):
    other = make_account()
    stranger = make_user(other)
    ana = make_user(account)
    red = make_group(account, "Red")
    result = groups.add_to_groups(account.admin, [red.id], Selection(ids=(ana.id, stranger.id)))
    assert result.added == 1
    assert member_ids(red) == {ana.id}


def test_only_strangers_selected_adds_no_one(account):
    stranger = make_user(make_account())
    red = make_group(account, "Red")
    result = groups.add_to_groups(account.admin, [red.id], Selection(ids=(stranger.id,)))
    assert (result.selected, result.added) == (0, 0)
    assert member_ids(red) == set()


def test_a_group_of_another_account_cannot_be_added_to(account):
    other = make_account()
    theirs = make_group(other, "Theirs")
    ana = make_user(account)
    with pytest.raises(ServiceError) as caught:
        groups.add_to_groups(account.admin, [theirs.id], Selection(ids=(ana.id,)))
    assert caught.value.field == "group_ids"
    assert member_ids(theirs) == set()


def test_adding_needs_a_group_and_someone(account):
    ana = make_user(account)
    red = make_group(account, "Red")
    with pytest.raises(ServiceError, match="Choose at least one group"):
        groups.add_to_groups(account.admin, [], Selection(ids=(ana.id,)))
    with pytest.raises(ServiceError, match="at least one user"):
        groups.add_to_groups(account.admin, [red.id], Selection())


def test_a_failed_add_leaves_nothing_behind(account):
    ana = make_user(account)
    make_group(account, "Red")
    blue = make_group(account, "Blue")
    with pytest.raises(ServiceError):
        groups.add_to_groups(account.admin, [blue.id], Selection(ids=(ana.id,)),
                             new_group_name="RED")
    db.session.rollback()
    assert member_ids(blue) == set()
    assert db.session.scalar(sa.select(sa.func.count(Group.id))) == 2


def test_deleted_users_are_not_added(account):
    ana, bo = make_user(account), make_user(account)
    bo.deleted_at = utcnow()
    db.session.commit()
    red = make_group(account, "Red")
    result = groups.add_to_groups(account.admin, [red.id], Selection(ids=(ana.id, bo.id)))
    assert member_ids(red) == {ana.id}
    assert result.selected == 1


def add_in_threads(app, actor_ids, group_id, membership_id, *, before_start=None):
    """Run add_to_groups for each actor in its own thread and app context, all at once."""
    barrier = threading.Barrier(len(actor_ids), timeout=10)
    outcomes = []

    def run(actor_id):
        from portal.models import Membership

        with app.app_context():
            actor = db.session.get(Membership, actor_id)
            db.session.commit()  # hold no lock while waiting for the other threads
            barrier.wait()
            try:
                outcomes.append(groups.add_to_groups(
                    actor, [group_id], Selection(ids=(membership_id,))).added)
            except Exception as exc:  # noqa: BLE001 - the test reports whatever went wrong
                outcomes.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in actor_ids]
    for thread in threads:
        thread.start()
    if before_start:
        before_start()
    for thread in threads:
        thread.join(30)
    db.session.commit()  # end the test's read snapshot: it predates the threads' writes
    return outcomes


def test_two_admins_adding_the_same_user_at_once_make_one_row_and_no_error(app, account):
    second = make_user(account, role="admin")
    ana = make_user(account)
    red = make_group(account)
    outcomes = add_in_threads(app, [account.admin.id, second.id], red.id, ana.id)
    assert sorted(outcomes) == [0, 1], outcomes
    assert member_ids(red) == {ana.id}


def test_an_add_racing_another_admins_uncommitted_add_of_the_same_pair_skips_it(app, account):
    ana = make_user(account)
    red = make_group(account)
    # Another admin's transaction has inserted the pair and not committed yet: on PostgreSQL
    # the add waits on the key and then fails on it (and retries); SQLite makes it wait first.
    other = db.engine.connect()
    transaction = other.begin()
    other.execute(sa.insert(GroupMember).values(group_id=red.id, membership_id=ana.id,
                                                created_at=utcnow()))

    def commit_the_other_add():
        time.sleep(0.5)
        transaction.commit()
        other.close()

    outcomes = add_in_threads(app, [account.admin.id], red.id, ana.id,
                              before_start=commit_the_other_add)
    assert outcomes == [0]
    assert member_ids(red) == {ana.id}


# --- removing ------------------------------------------------------------------------------


def test_removing_members_from_a_group(account):
    ana, bo = make_user(account), make_user(account)
    red = make_group(account, "Red", members=[ana, bo])
    assert groups.remove_from_group(account.admin, red.id, [ana.id]) == 1
    assert member_ids(red) == {bo.id}
    event = events("group.member_removed")[-1]
    assert (event.subject_user_id, event.details["group"]) == (ana.user_id, "Red")


def test_removing_the_only_member_of_a_group_assigned_to_a_step_is_blocked(account):
    ana = make_user(account)
    red = make_group(account, "Red", members=[ana])
    stream = make_taskstream(account, "Delivery", [("Load", red.id)])
    with pytest.raises(groups.GroupInUse) as caught:
        groups.remove_from_group(account.admin, red.id, [ana.id])
    assert "only member" in caught.value.message
    assert "“Load” of “Delivery”" in caught.value.message
    assert caught.value.status == 409
    [step] = caught.value.steps
    assert (step.taskstream_id, step.step_id) == (stream.id, stream.steps[0].id)
    db.session.rollback()
    assert member_ids(red) == {ana.id}


def test_removing_everyone_at_once_from_an_assigned_group_is_blocked(account):
    ana, bo = make_user(account), make_user(account)
    red = make_group(account, "Red", members=[ana, bo])
    make_taskstream(account, "Delivery", [("Load", red.id)])
    with pytest.raises(groups.GroupInUse, match="last members"):
        groups.remove_from_group(account.admin, red.id, [ana.id, bo.id])
    db.session.rollback()
    assert groups.remove_from_group(account.admin, red.id, [ana.id]) == 1


def test_a_deleted_member_does_not_count_as_someone_left(account):
    ana, bo = make_user(account), make_user(account)
    red = make_group(account, "Red", members=[ana, bo])
    make_taskstream(account, "Delivery", [("Load", red.id)])
    bo.deleted_at = utcnow()
    db.session.commit()
    with pytest.raises(groups.GroupInUse):
        groups.remove_from_group(account.admin, red.id, [ana.id])


def test_the_only_member_of_an_unassigned_group_can_be_removed(account):
    ana = make_user(account)
    red = make_group(account, "Red", members=[ana])
    assert groups.remove_from_group(account.admin, red.id, [ana.id]) == 1


def test_removing_from_another_accounts_group_is_not_found(account):
    other = make_account()
    theirs = make_group(other, "Theirs", members=[make_user(other)])
    with pytest.raises(NotFound):
        groups.remove_from_group(account.admin, theirs.id, list(member_ids(theirs)))


def test_removing_someone_who_is_not_in_the_group_says_so(account):
    red = make_group(account, "Red")
    with pytest.raises(ServiceError, match="not in this group"):
        groups.remove_from_group(account.admin, red.id, [make_user(account).id])


# --- deleting ------------------------------------------------------------------------------


def test_deleting_groups_removes_them_and_their_memberships(account):
    ana = make_user(account)
    red = make_group(account, "Red", members=[ana])
    blue = make_group(account, "Blue")
    red_id = red.id
    result = groups.delete_groups(account.admin, [red.id, blue.id])
    assert result.names == ["Blue", "Red"] and result.blocked == []
    assert db.session.scalar(sa.select(sa.func.count(Group.id))) == 0
    assert db.session.scalar(
        sa.select(sa.func.count()).select_from(GroupMember).where(GroupMember.group_id == red_id)
    ) == 0
    deleted = {e.details["name"]: e.details["members"] for e in events("group.deleted")}
    assert deleted == {"Red": 1, "Blue": 0}


def test_deleting_a_group_assigned_to_a_step_is_blocked_with_the_step(account):
    red = make_group(account, "Red")
    blue = make_group(account, "Blue")
    stream = make_taskstream(account, "Delivery", [("Load", None), ("Drive", red.id)])
    result = groups.delete_groups(account.admin, [red.id, blue.id])
    assert result.names == ["Blue"]
    [blocked] = result.blocked
    assert "“Red” is assigned to the step “Drive” of “Delivery”" in blocked.message
    assert [s.step_id for s in blocked.steps] == [stream.steps[1].id]
    assert db.session.get(Group, red.id) is not None


def test_deleting_groups_of_another_account_does_nothing(account):
    theirs = make_group(make_account(), "Theirs")
    result = groups.delete_groups(account.admin, [theirs.id])
    assert result.names == [] and result.blocked == []
    assert db.session.get(Group, theirs.id) is not None


def test_deleting_nothing_asks_for_a_selection(account):
    with pytest.raises(ServiceError, match="Select at least one group"):
        groups.delete_groups(account.admin, [])


def test_adding_to_a_group_deleted_meanwhile_is_a_clear_error(account):
    ana = make_user(account)
    red_id = make_group(account, "Red").id
    groups.delete_groups(account.admin, [red_id])
    with pytest.raises(ServiceError, match="no longer exists") as caught:
        groups.add_to_groups(account.admin, [red_id], Selection(ids=(ana.id,)))
    assert caught.value.field == "group_ids"


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   "])
def test_a_group_needs_a_name(account, name):
    with pytest.raises(ServiceError, match="name is required") as caught:
        groups.create_group(account.admin, name)
    assert caught.value.field == "name"


def test_group_names_are_unique_whatever_the_case(account):
    make_group(account, "Reviewers")
    with pytest.raises(ServiceError, match="already exists"):
        groups.create_group(account.admin, "REVIEWERS")


def test_the_same_name_may_be_used_in_another_account(account):
    make_group(account, "Reviewers")
    assert groups.create_group(make_account().admin, "reviewers").name == "reviewers"


def test_renaming_a_group(account):
    red = make_group(account, "Red")
    groups.rename_group(account.admin, red.id, "Crimson")
    db.session.refresh(red)
    assert red.name == "Crimson" and red.name_key == "crimson"
    assert events("group.renamed")[-1].details == {"group_id": red.id, "old": "Red",
                                                   "new": "Crimson"}


def test_renaming_to_another_groups_name_is_refused_but_a_case_change_is_fine(account):
    make_group(account, "Blue")
    red = make_group(account, "Red")
    with pytest.raises(ServiceError, match="already exists"):
        groups.rename_group(account.admin, red.id, "blue")
    db.session.rollback()
    assert groups.rename_group(account.admin, red.id, "RED").name == "RED"


def test_renaming_another_accounts_group_is_not_found(account):
    theirs = make_group(make_account(), "Theirs")
    with pytest.raises(NotFound):
        groups.rename_group(account.admin, theirs.id, "Mine")


# --- reading -------------------------------------------------------------------------------


def test_the_list_counts_live_members_and_names_the_taskstreams(account):
    ana, bo, cy = (make_user(account) for _ in range(3))
    red = make_group(account, "Red", members=[ana, bo, cy])
    make_group(account, "Blue")
    make_taskstream(account, "Delivery", [("Load", red.id), ("Unload", red.id)])
    make_taskstream(account, "Audit", [("Check", red.id)])
    cy.deleted_at = utcnow()
    db.session.commit()
    page = groups.list_groups(account.admin)
    assert [(r.group.name, r.members, [t.name for t in r.taskstreams]) for r in page.rows] == [
        ("Blue", 0, []),
        ("Red", 2, ["Audit", "Delivery"]),
    ]


def test_the_list_searches_and_pages(account):
    for n in range(groups.PAGE_SIZE + 5):
        make_group(account, f"Team {n:02d}")
    make_group(account, "100%_sure")
    assert groups.list_groups(account.admin).total == groups.PAGE_SIZE + 6
    second = groups.list_groups(account.admin, page=2)
    assert len(second.rows) == 6 and second.pages == 2
    assert [r.group.name for r in groups.list_groups(account.admin, q="%_").rows] == ["100%_sure"]
    assert groups.list_groups(account.admin, q="team 1").total == 10


def test_the_list_shows_no_other_accounts_groups(account):
    make_group(make_account(), "Theirs")
    assert groups.list_groups(account.admin).total == 0


def test_the_picker_finds_names_and_emails_and_leaves_out_chosen_and_members(account):
    ana = make_user(account, name="Ana Müller", email="ana@example.org")
    bo = make_user(account, name="Bo Müller")
    make_user(account, name="Cy Other", email="cy.muller@example.org")
    make_user(make_account(), name="Stranger Müller")
    red = make_group(account, "Red", members=[bo])
    found = groups.search_members(account.admin, "müller")
    assert [m.user.name for m in found] == ["Ana Müller", "Bo Müller"]
    assert [m.user.name for m in groups.search_members(account.admin, "MULLER@")] == ["Cy Other"]
    assert [m.user.name for m in groups.search_members(account.admin, "an")] == ["Ana Müller"]
    assert groups.search_members(account.admin, "müller", exclude_ids=[ana.id],
                                 exclude_group_id=red.id) == []
    assert groups.search_members(account.admin, "  ") == []
    assert groups.search_members(account.admin, '"*) OR (:') == []


def test_the_picker_sees_renamed_and_deleted_people(account):
    ana = make_user(account, name="Ana Alpha")
    ana.user.name = "Ana Omega"
    db.session.commit()
    assert [m.id for m in groups.search_members(account.admin, "omega")] == [ana.id]
    assert groups.search_members(account.admin, "alpha") == []
    ana.deleted_at = utcnow()
    db.session.commit()
    assert groups.search_members(account.admin, "omega") == []


def test_the_picker_shows_a_limited_number(account):
    for n in range(groups.PICKER_LIMIT + 3):
        make_user(account, name=f"Sam {n:02d}")
    assert len(groups.search_members(account.admin, "sam")) == groups.PICKER_LIMIT


def test_members_are_listed_by_name_and_can_be_searched(account):
    zoe = make_user(account, name="Zoe Zed")
    adam = make_user(account, name="Adam Ant")
    red = make_group(account, "Red", members=[zoe, adam])
    page = groups.list_members(account.admin, red)
    assert [m.id for m in page.rows] == [adam.id, zoe.id] and page.total == 2
    assert [m.id for m in groups.list_members(account.admin, red, q="zed").rows] == [zoe.id]
