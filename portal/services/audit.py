"""Audit trail: one event per change and per sign-in."""
from typing import Any

from flask import has_request_context
from flask import request

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import User


def label(user: User | None) -> str | None:
    """Return the readable snapshot of a person kept on an event."""
    return f"{user.name} <{user.email}>" if user is not None else None


def record(
    actor,
    action: str,
    *,
    subject: User | None = None,
    account_id: int | None = None,
    actor_user: User | None = None,
    **details: Any,
) -> AuditEvent:
    """Add an audit event to the session (committed with the change it describes)."""
    if actor is not None:
        actor_user = actor.user
        account_id = account_id if account_id is not None else actor.account_id
    event = AuditEvent(
        account_id=account_id,
        actor_user_id=actor_user.id if actor_user is not None else None,
        actor_label=label(actor_user) if actor_user is not None else (
            "operator (CLI)" if actor is not None else None
        ),
        subject_user_id=subject.id if subject is not None else None,
        subject_label=label(subject),
        action=action,
        details=details,
        ip=request.remote_addr if has_request_context() else None,
    )
    db.session.add(event)
    return event
