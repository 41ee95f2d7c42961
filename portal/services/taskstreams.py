"""Taskstreams: workflows whose ordered steps are assigned to groups, and who participates."""
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.extensions import db
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import Step
from portal.models import Taskstream
from portal.services import audit
from portal.services import paging
from portal.services import scope
from portal.services import text
from portal.services.errors import ServiceError

PAGE_SIZE = 25


@dataclass
class Reach:
    """A taskstream a person takes part in, with the steps their groups are assigned to."""

    taskstream: Taskstream
    steps: list[Step] = field(default_factory=list)


@dataclass
class Participation:
    """What User Details shows under **Participates in** (and the JSON API's ``me``)."""

    groups: list[Group]
    taskstreams: list[Reach]


def _clean(name: str, what: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError(f"A {what} name is required.", "name")
    if len(name) > 120:
        raise ServiceError(f"The {what} name is longer than 120 characters.", "name")
    text.refuse_control(name, f"The {what} name cannot contain control characters.", "name")
    return name


def _group(actor, group_id) -> Group | None:
    """Return the chosen group (None for "no group"); an unknown id is a field error."""
    if group_id in (None, "", 0):
        return None
    ids = scope.ids_in_account(Group, [group_id], actor)
    if not ids:
        raise ServiceError("That group no longer exists; choose another.", "group_id")
    # A shared key lock: a concurrent delete of the group waits for this assignment, then sees it.
    return db.session.scalars(
        sa.select(Group).where(Group.id == ids[0]).with_for_update(key_share=True)
    ).one()


def _step(actor, step_id) -> Step:
    return scope.get_in_account(Step, step_id, actor)


def _renumber(stream: Taskstream) -> None:
    for position, step in enumerate(stream.steps, start=1):
        step.position = position


# --- reading -------------------------------------------------------------------------------


def list_taskstreams(actor, page: int = 1) -> paging.Page:
    """Return one page of the account's taskstreams by name, with their steps and groups."""
    base = scope.in_account(sa.select(Taskstream.id), Taskstream, actor)
    rows = (
        sa.select(Taskstream)
        .where(Taskstream.id.in_(base))
        .options(so.selectinload(Taskstream.steps))
        .order_by(Taskstream.name, Taskstream.id)
    )
    return paging.fetch(base, rows, page, PAGE_SIZE)


def get_taskstream(actor, taskstream_id) -> Taskstream:
    """Return the actor's taskstream (its steps load with their groups), or raise NotFound."""
    return scope.get_in_account(Taskstream, taskstream_id, actor)


def participates_in(actor, membership_id) -> Participation:
    """Return a user's groups and the taskstreams (and steps) reached through them.

    A user participates in a taskstream when one of their groups is assigned to one of its
    steps. User Details and the JSON API both answer from here.
    """
    membership = scope.get_in_account(Membership, membership_id, actor)
    groups = list(
        db.session.scalars(
            sa.select(Group)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.membership_id == membership.id, Group.account_id == actor.account_id)
            .order_by(Group.name_key, Group.id)
        )
    )
    reached: dict[int, Reach] = {}
    if groups:
        rows = db.session.execute(
            sa.select(Taskstream, Step)
            .join(Step, Step.taskstream_id == Taskstream.id)
            .where(Step.group_id.in_([g.id for g in groups]))
            .order_by(Taskstream.name, Taskstream.id, Step.position)
        )
        for stream, step in rows:
            reached.setdefault(stream.id, Reach(stream)).steps.append(step)
    return Participation(groups=groups, taskstreams=list(reached.values()))


# --- changing ------------------------------------------------------------------------------


def create_taskstream(actor, name: str, steps: Sequence[tuple[str, int | None]] = ()) -> Taskstream:
    """Create a taskstream with its steps, each (name, group id or None)."""
    name = _clean(name, "taskstream")
    stream = Taskstream(account_id=actor.account_id, name=name)
    for position, (step_name, group_id) in enumerate(steps, start=1):
        group = _group(actor, group_id)
        stream.steps.append(
            Step(position=position, name=_clean(step_name, "step"),
                 group_id=group.id if group else None)
        )
    db.session.add(stream)
    db.session.flush()
    audit.record(actor, "taskstream.created", taskstream_id=stream.id, name=stream.name,
                 steps=len(stream.steps))
    db.session.commit()
    return stream


def rename_taskstream(actor, taskstream_id, name: str) -> Taskstream:
    """Rename a taskstream."""
    stream = scope.get_in_account(Taskstream, taskstream_id, actor)
    name = _clean(name, "taskstream")
    if name != stream.name:
        audit.record(actor, "taskstream.renamed", taskstream_id=stream.id, old=stream.name,
                     new=name)
        stream.name = name
        db.session.commit()
    return stream


def delete_taskstream(actor, taskstream_id) -> str:
    """Delete a taskstream and its steps; return its name."""
    stream = scope.get_in_account(Taskstream, taskstream_id, actor)
    name = stream.name
    audit.record(actor, "taskstream.deleted", taskstream_id=stream.id, name=name,
                 steps=len(stream.steps))
    db.session.delete(stream)
    db.session.commit()
    return name


def add_step(actor, taskstream_id, name: str, group_id: int | None = None) -> Step:
    """Append a step to a taskstream, optionally assigned to a group."""
    stream = scope.get_in_account(Taskstream, taskstream_id, actor)
    name = _clean(name, "step")
    group = _group(actor, group_id)
    step = Step(position=len(stream.steps) + 1, name=name, group_id=group.id if group else None)
    stream.steps.append(step)
    db.session.flush()
    audit.record(actor, "step.added", taskstream_id=stream.id, taskstream=stream.name,
                 step_id=step.id, name=name, group=group.name if group else None)
    db.session.commit()
    return step


def move_step(actor, step_id, offset: int) -> Step:
    """Move a step one place up (offset -1) or down (+1); at either end it stays put."""
    if offset not in (-1, 1):
        raise ServiceError("A step moves one place up or down.")
    step = _step(actor, step_id)
    stream = db.session.get(Taskstream, step.taskstream_id)
    steps = list(stream.steps)
    index = steps.index(step)
    target = index + offset
    if 0 <= target < len(steps):
        steps[index], steps[target] = steps[target], steps[index]
        stream.steps[:] = steps
        _renumber(stream)
        audit.record(actor, "step.moved", taskstream_id=stream.id, taskstream=stream.name,
                     step_id=step.id, name=step.name, position=step.position)
        db.session.commit()
    return step


def remove_step(actor, step_id) -> str:
    """Remove a step from its taskstream (the others close the gap); return its name."""
    step = _step(actor, step_id)
    stream = db.session.get(Taskstream, step.taskstream_id)
    name, removed_id = step.name, step.id
    stream.steps.remove(step)
    _renumber(stream)
    audit.record(actor, "step.removed", taskstream_id=stream.id, taskstream=stream.name,
                 step_id=removed_id, name=name)
    db.session.commit()
    return name


def assign_step(actor, step_id, group_id: int | None) -> Step:
    """Assign a step to a group of the account, or to none."""
    step = _step(actor, step_id)
    group = _group(actor, group_id)
    new_id = group.id if group else None
    if new_id != step.group_id:
        old = step.group
        step.group = group
        stream = db.session.get(Taskstream, step.taskstream_id)
        audit.record(actor, "step.assigned", taskstream_id=step.taskstream_id,
                     taskstream=stream.name, step_id=step.id, name=step.name,
                     old=old.name if old else None, new=group.name if group else None)
        db.session.commit()
    return step
