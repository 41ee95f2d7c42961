"""Taskstreams: steps in order, assigned to groups, and who participates in what."""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Step
from portal.models import Taskstream
from portal.models import utcnow
from portal.services import taskstreams
from portal.services.errors import NotFound
from portal.services.errors import ServiceError
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user


def step_names(stream) -> list[tuple[int, str]]:
    db.session.expire_all()
    return [(s.position, s.name) for s in db.session.get(Taskstream, stream.id).steps]


def last_event(action: str) -> AuditEvent:
    return db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())
    ).first()


def test_creating_renaming_and_deleting_a_taskstream_is_audited(account):
    stream = taskstreams.create_taskstream(account.admin, "  Delivery  round ")
    assert stream.name == "Delivery round"
    taskstreams.rename_taskstream(account.admin, stream.id, "Deliveries")
    assert last_event("taskstream.renamed").details["new"] == "Deliveries"
    stream_id = stream.id
    assert taskstreams.delete_taskstream(account.admin, stream_id) == "Deliveries"
    assert db.session.get(Taskstream, stream_id) is None
    assert last_event("taskstream.deleted").details["name"] == "Deliveries"


@pytest.mark.parametrize("name", ["", "  ", "x" * 121])
def test_a_taskstream_needs_a_sensible_name(account, name):
    with pytest.raises(ServiceError) as caught:
        taskstreams.create_taskstream(account.admin, name)
    assert caught.value.field == "name"


def test_steps_are_added_in_order_and_assigned_to_groups(account):
    red = make_group(account, "Red")
    stream = make_taskstream(account, "Delivery", [("Load", None)])
    step = taskstreams.add_step(account.admin, stream.id, "Drive", red.id)
    assert (step.position, step.group_id) == (2, red.id)
    assert last_event("step.added").details["group"] == "Red"
    assert step_names(stream) == [(1, "Load"), (2, "Drive")]


def test_moving_steps_up_and_down_keeps_positions_contiguous(account):
    stream = make_taskstream(account, "S", [("A", None), ("B", None), ("C", None)])
    a, b, c = stream.steps
    taskstreams.move_step(account.admin, c.id, -1)
    assert step_names(stream) == [(1, "A"), (2, "C"), (3, "B")]
    taskstreams.move_step(account.admin, a.id, -1)  # already first: stays
    taskstreams.move_step(account.admin, a.id, 1)
    assert step_names(stream) == [(1, "C"), (2, "A"), (3, "B")]
    assert last_event("step.moved").details["position"] == 2


def test_removing_a_step_closes_the_gap(account):
    stream = make_taskstream(account, "S", [("A", None), ("B", None), ("C", None)])
    assert taskstreams.remove_step(account.admin, stream.steps[1].id) == "B"
    assert step_names(stream) == [(1, "A"), (2, "C")]
    assert last_event("step.removed").details["name"] == "B"


def test_assigning_and_unassigning_a_step(account):
    red = make_group(account, "Red")
    blue = make_group(account, "Blue")
    stream = make_taskstream(account, "S", [("A", red.id)])
    step_id = stream.steps[0].id
    taskstreams.assign_step(account.admin, step_id, blue.id)
    assert last_event("step.assigned").details == {
        "taskstream_id": stream.id, "taskstream": "S", "step_id": step_id, "name": "A", "old": "Red", "new": "Blue"}
    taskstreams.assign_step(account.admin, step_id, None)
    assert db.session.get(Step, step_id).group_id is None


def test_a_step_cannot_be_assigned_to_another_accounts_group(account):
    theirs = make_group(make_account(), "Theirs")
    stream = make_taskstream(account, "S", [("A", None)])
    with pytest.raises(ServiceError, match="no longer exists") as caught:
        taskstreams.assign_step(account.admin, stream.steps[0].id, theirs.id)
    assert caught.value.field == "group_id"
    with pytest.raises(ServiceError):
        taskstreams.add_step(account.admin, stream.id, "B", theirs.id)


def test_another_accounts_taskstreams_and_steps_are_not_found(account):
    theirs = make_taskstream(make_account(), "Theirs", [("A", None)])
    step_id = theirs.steps[0].id
    for call in (
        lambda: taskstreams.rename_taskstream(account.admin, theirs.id, "Mine"),
        lambda: taskstreams.delete_taskstream(account.admin, theirs.id),
        lambda: taskstreams.add_step(account.admin, theirs.id, "B"),
        lambda: taskstreams.move_step(account.admin, step_id, 1),
        lambda: taskstreams.remove_step(account.admin, step_id),
        lambda: taskstreams.assign_step(account.admin, step_id, None),
        lambda: taskstreams.get_taskstream(account.admin, theirs.id),
    ):
        with pytest.raises(NotFound):
            call()


def test_a_user_participates_in_the_taskstreams_their_groups_are_assigned_to(account):
    ana = make_user(account)
    red = make_group(account, "Red", members=[ana])
    blue = make_group(account, "Blue", members=[ana])
    make_group(account, "Green")
    make_taskstream(account, "Delivery", [("Load", red.id), ("Drive", None), ("Sign", blue.id)])
    make_taskstream(account, "Audit", [("Check", blue.id)])
    make_taskstream(account, "Elsewhere", [("Nothing", None)])
    result = taskstreams.participates_in(account.admin, ana.id)
    assert [g.name for g in result.groups] == ["Blue", "Red"]
    assert [(r.taskstream.name, [(s.name, s.group.name) for s in r.steps])
            for r in result.taskstreams] == [
        ("Audit", [("Check", "Blue")]),
        ("Delivery", [("Load", "Red"), ("Sign", "Blue")]),
    ]


def test_participation_of_another_accounts_user_is_not_found(account):
    with pytest.raises(NotFound):
        taskstreams.participates_in(account.admin, make_user(make_account()).id)


def test_the_list_pages_taskstreams_with_their_groups(account):
    red = make_group(account, "Red")
    make_taskstream(account, "B stream", [("A", red.id)])
    make_taskstream(account, "A stream", [])
    make_taskstream(make_account(), "Theirs", [])
    page = taskstreams.list_taskstreams(account.admin)
    assert [t.name for t in page.rows] == ["A stream", "B stream"]
    assert page.total == 2 and page.rows[1].steps[0].group.name == "Red"


def test_a_deleted_user_still_shows_nothing_for_an_unknown_membership(account):
    ana = make_user(account)
    ana.deleted_at = utcnow()
    db.session.commit()
    with pytest.raises(NotFound):
        taskstreams.participates_in(account.admin, ana.id)
