"""E-mail composition: templates in templates/email, links from BASE_URL only."""
from collections.abc import Iterable
from collections.abc import Mapping

import sqlalchemy as sa
from flask import current_app
from flask import render_template

from portal.extensions import db
from portal.models import Account
from portal.models import OutboxMessage
from portal.models import utcnow


def link(path: str) -> str:
    """Return an absolute link built from the configured base URL, never the Host header."""
    return current_app.config["BASE_URL"].rstrip("/") + path


def enqueue(
    kind: str,
    to: str,
    subject: str,
    *,
    account: Account | None = None,
    user_id: int | None = None,
    membership_id: int | None = None,
    **context,
) -> OutboxMessage:
    """Render templates/email/<kind>.txt/.html and add the message to the outbox."""
    body_text, body_html = render(kind, account, subject, context)
    message = OutboxMessage(
        kind=kind,
        to_addr=to,
        subject=subject,
        account_id=account.id if account is not None else None,
        user_id=user_id,
        membership_id=membership_id,
        sender_name=account.sender_name or account.name if account is not None else None,
        body_text=body_text,
        body_html=body_html,
    )
    db.session.add(message)
    return message


def enqueue_many(
    kind: str,
    subject: str,
    recipients: Iterable[Mapping],
    *,
    account: Account | None = None,
    **shared,
) -> int:
    """Queue one e-mail per recipient in one INSERT, to be rendered when it is sent.

    Each recipient maps "to", "user_id", optionally "membership_id", and its own template
    variables; ``shared`` holds the variables common to all. Only the variables are stored
    (JSON), so queuing 100,000 invitations stays within a bulk action's time budget.
    """
    now = utcnow()
    common = {
        "kind": kind,
        "subject": subject,
        "account_id": account.id if account is not None else None,
        "sender_name": account.sender_name or account.name if account is not None else None,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    addressing = ("to", "user_id", "membership_id")
    rows = [
        dict(
            common,
            to_addr=r["to"],
            user_id=r.get("user_id"),
            membership_id=r.get("membership_id"),
            context=dict(shared, **{k: v for k, v in r.items() if k not in addressing}),
        )
        for r in recipients
    ]
    if rows:
        # The table, not the mapped class: a plain executemany, no per-row ORM work.
        db.session.execute(sa.insert(OutboxMessage.__table__), rows)
    return len(rows)


def render(kind: str, account: Account | None, subject: str, context: dict) -> tuple[str, str]:
    """Return the text and HTML bodies of templates/email/<kind>."""
    context = dict(context, account=account, subject=subject)
    return (
        render_template(f"email/{kind}.txt", **context),
        render_template(f"email/{kind}.html", **context),
    )


def bodies(message: OutboxMessage) -> tuple[str, str | None]:
    """Return a message's bodies; one queued with only its context is rendered now."""
    if message.body_text is not None:
        return message.body_text, message.body_html
    account = db.session.get(Account, message.account_id) if message.account_id else None
    return render(message.kind, account, message.subject, message.context or {})
