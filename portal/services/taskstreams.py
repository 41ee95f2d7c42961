"""Taskstreams: workflows whose ordered steps are assigned to groups."""
from collections.abc import Sequence

from portal.extensions import db
from portal.models import Group
from portal.models import Step
from portal.models import Taskstream
from portal.services import audit
from portal.services import scope
from portal.services.errors import ServiceError


def create_taskstream(actor, name: str, steps: Sequence[tuple[str, int | None]] = ()) -> Taskstream:
    """Create a taskstream with its steps, each (name, group id or None)."""
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError("A taskstream name is required.", "name")
    stream = Taskstream(account_id=actor.account_id, name=name[:120])
    for position, (step_name, group_id) in enumerate(steps, start=1):
        group = scope.get_in_account(Group, group_id, actor) if group_id else None
        stream.steps.append(
            Step(position=position, name=step_name[:120], group_id=group.id if group else None)
        )
    db.session.add(stream)
    audit.record(actor, "taskstream.created", name=stream.name, steps=len(stream.steps))
    db.session.commit()
    return stream
