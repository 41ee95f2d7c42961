"""E-mail composition: templates in templates/email, links from BASE_URL only."""
import re
from collections.abc import Iterable
from collections.abc import Mapping

import sqlalchemy as sa
from flask import current_app
from flask import render_template
from markupsafe import escape

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


# Marks a per-recipient field in a template rendered once for many recipients.
_FIELD = re.compile("\x1e(\\w+)\x1e")


def _pieces(rendered: str) -> list[str]:
    """Split a rendering into literal text (even indexes) and field names (odd indexes)."""
    return _FIELD.split(rendered)


def _fill(pieces: list[str], values: Mapping[str, str]) -> str:
    return "".join(values[p] if i % 2 else p for i, p in enumerate(pieces))


def enqueue_many(
    kind: str,
    subject: str,
    recipients: Iterable[Mapping],
    *,
    fields: tuple[str, ...] = ("name", "url"),
    account: Account | None = None,
    **context,
) -> int:
    """Queue one e-mail per recipient in one INSERT, rendering each template only once.

    Each recipient maps "to", "user_id", optionally "membership_id", and every name in
    ``fields``; those values must be printed as they are in the templates (``{{ name }}``,
    no filters), because they are substituted into the rendering (HTML-escaped in the HTML
    part). This keeps queuing 100,000 invitations within a bulk action's time budget.
    """
    marks = {name: f"\x1e{name}\x1e" for name in fields}
    context.update(account=account, subject=subject, **marks)
    text = _pieces(render_template(f"email/{kind}.txt", **context))
    html = _pieces(render_template(f"email/{kind}.html", **context))
    now = utcnow()
    shared = {
        "kind": kind,
        "subject": subject,
        "account_id": account.id if account is not None else None,
        "sender_name": account.sender_name or account.name if account is not None else None,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    rows = [
        dict(
            shared,
            to_addr=r["to"],
            user_id=r.get("user_id"),
            membership_id=r.get("membership_id"),
            body_text=_fill(text, {f: str(r[f]) for f in fields}),
            body_html=_fill(html, {f: str(escape(r[f])) for f in fields}),
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
