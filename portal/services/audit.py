"""Audit trail: one event per change and per sign-in."""
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import InviteState
from portal.models import Membership
from portal.models import User
from portal.models import utcnow

REFUSED = "access.refused"
# The address of the client whose request is being served, handed in by the web edge for each
# request (portal/__init__.py); None for the CLI and background work. No service reads a request.
client_address: ContextVar[str | None] = ContextVar("client_address", default=None)


def label(user: User | None) -> str | None:
    """Return the readable snapshot of a person kept on an event."""
    return f"{user.name} <{user.email}>" if user is not None else None


def _seen_label(user: User | None, account_id: int | None) -> str | None:
    """Return the person as the event's account knows them: the name it typed while its
    invitation of someone known elsewhere waits (DESIGN §1), else their own."""
    if user is None:
        return None
    typed = db.session.scalar(
        sa.select(Membership.invited_name).where(
            Membership.account_id == account_id, Membership.user_id == user.id)
    ) if account_id is not None else None
    return f"{typed} <{user.email}>" if typed else label(user)


def acting_label(actor) -> str:
    """Return how the trail names an actor with no person behind it (CLI, a SCIM token)."""
    return getattr(actor, "audit_label", None) or "operator (CLI)"


def record(
    actor,
    action: str,
    *,
    subject: User | None = None,
    account_id: int | None = None,
    actor_user: User | None = None,
    subject_label: str | None = None,
    **details: Any,
) -> AuditEvent:
    """Add an audit event to the session (committed with the change it describes).

    ``subject_label`` names the subject when the caller already knows how the account sees
    them; otherwise it is read (the name the account typed while its invitation waits).
    """
    if actor is not None:
        actor_user = actor.user
        account_id = account_id if account_id is not None else actor.account_id
    event = AuditEvent(
        account_id=account_id,
        actor_user_id=actor_user.id if actor_user is not None else None,
        actor_label=label(actor_user) if actor_user is not None else (
            acting_label(actor) if actor is not None else None
        ),
        subject_user_id=subject.id if subject is not None else None,
        subject_label=subject_label or _seen_label(subject, account_id),
        action=action,
        details=details,
        ip=client_address.get(),
    )
    db.session.add(event)
    return event


def record_in_accounts(action: str, *, subject: User | None, actor_user: User | None = None,
                       **details: Any) -> None:
    """Add an event about a person with no acting account (a failed sign-in) to the trail of
    each account they have joined, so every one of them shows it; once, without an account,
    when they have joined none or are nobody (an unknown address: the same query runs)."""
    joined = db.session.scalars(
        sa.select(Membership.account_id).where(
            Membership.user_id == (subject.id if subject is not None else 0),
            Membership.deleted_at.is_(None),
            # An invitation not yet accepted shows the account nothing of the person's own.
            Membership.invite_state == InviteState.ACTIVE,
        ).order_by(Membership.account_id)
    ).all()
    for account_id in joined or [None]:
        # Only accounts whose invitation was accepted: they know the person by their own name,
        # so no read of a typed one (a known address must run the statements an unknown runs).
        record(None, action, subject=subject, account_id=account_id, actor_user=actor_user,
               subject_label=label(subject), **details)


def record_many(actor, action: str, user_ids: sa.Select, **details: Any) -> int:
    """Add one audit event per person ``user_ids`` selects, in one INSERT ... SELECT."""
    actor_user = actor.user
    subjects = sa.select(
        sa.literal(actor.account_id),
        sa.literal(actor_user.id if actor_user is not None else None, sa.Integer),
        sa.literal(label(actor_user) if actor_user is not None else acting_label(actor)),
        User.id,
        # The name this account knows them by (typed at the invitation until it is accepted).
        sa.func.coalesce(Membership.invited_name, User.name) + " <" + User.email + ">",
        sa.literal(action),
        sa.literal(details, sa.JSON),
        sa.literal(client_address.get(), sa.String),
        sa.literal(utcnow(), sa.DateTime),
    ).outerjoin(Membership, sa.and_(Membership.user_id == User.id,
                                    Membership.account_id == actor.account_id)
    ).where(User.id.in_(user_ids))
    result = db.session.execute(
        sa.insert(AuditEvent).from_select(
            [
                "account_id", "actor_user_id", "actor_label", "subject_user_id", "subject_label",
                "action", "details", "ip", "created_at",
            ],
            subjects,
        ).execution_options(preserve_rowcount=True)  # else PostgreSQL reports -1
    )
    return result.rowcount


def access_refused(actor, *, route: str, method: str, kind: str, ident: str,
                   ip: str | None) -> bool:
    """Record a refused request for an id outside the actor's account; commits.

    One "access.refused" event in the actor's account (actor, route, the id asked for), the
    same whether the id is absent or another account's. At most AUDIT_REFUSALS_PER_MINUTE per
    actor in any minute, so a crawler cannot flood the trail; returns whether it was written.
    """
    since = utcnow() - timedelta(minutes=1)
    recent = db.session.scalar(
        sa.select(sa.func.count(AuditEvent.id)).where(
            AuditEvent.actor_user_id == actor.user_id,
            AuditEvent.action == REFUSED,
            AuditEvent.created_at > since,
        )
    )
    if recent >= current_app.config["AUDIT_REFUSALS_PER_MINUTE"]:
        db.session.rollback()
        return False
    event = record(actor, REFUSED, route=route[:300], method=method, kind=kind, id=ident)
    event.ip = ip
    db.session.commit()
    return True
