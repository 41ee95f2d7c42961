"""E-mail composition: templates in templates/email, links from BASE_URL only."""
from flask import current_app
from flask import render_template

from portal.extensions import db
from portal.models import Account
from portal.models import OutboxMessage


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
    context.update(account=account, subject=subject)
    message = OutboxMessage(
        kind=kind,
        to_addr=to,
        subject=subject,
        account_id=account.id if account is not None else None,
        user_id=user_id,
        membership_id=membership_id,
        sender_name=account.sender_name or account.name if account is not None else None,
        body_text=render_template(f"email/{kind}.txt", **context),
        body_html=render_template(f"email/{kind}.html", **context),
    )
    db.session.add(message)
    return message
