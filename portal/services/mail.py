"""E-mail composition: templates in templates/email, links from BASE_URL only.

No admin ever reads a secret meant for someone else (DESIGN §1). A message that carries a
sealed link (a reset link, an invitation of someone who has a password) is stored as its
template context plus the SHA-256 of a placeholder token, never the link: the deliverer
gives the token a fresh random value (``delivery_bodies``) and puts the link into the mail
it sends, and pages render such a message with ``HIDDEN_LINK`` in its place (``preview``).
"""
import re

import sqlalchemy as sa
from flask import current_app
from flask import render_template

from portal.extensions import db
from portal.models import Account
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import User
from portal.services import people
from portal.services import tokens

# The subject of every kind of e-mail (templates/email/<kind>.txt and .html), filled by subject().
SUBJECTS = {
    "invite": "You are invited to {account}",
    "invite_refused": "Invitations to {account} refused by the mail server",
    "reset_password": "Reset your password",
    "password_changed": "Your password was changed",
    "email_changed": "Your e-mail address was changed",
    "activity_report": "Your activity in {account}, last {days} days",
    "second_factors_reset": "Your second factors were reset",
    "second_factor_changed": "Your sign-in security changed",
}
HIDDEN_LINK = "link hidden: only the recipient can use it"
# The context key of a sealed link: {"path": "/reset-password/", "token": <sha-256 hex>}.
SEALED = "sealed_link"
# Paths whose links grant a credential: never shown on a page unless ``_may_show`` says so.
SECRET_PATHS = ("/invite/", "/reset-password/")


class LinkGone(Exception):
    """The sealed link of a queued message was used, replaced or expired before delivery."""


def server_set() -> bool:
    """Tell whether a mail server is configured (else mail waits, readable, in Outgoing mail)."""
    return bool(current_app.config.get("MAIL_SERVER"))


def on_its_way(mail: str, to: str | None = None) -> str:
    """Say truly where ``mail`` just queued (for ``to``) is: on its way when a mail server is
    set, else waiting in Outgoing mail, where an admin can read it or copy its link."""
    if server_set():
        return f"{mail} is on its way" + (f" to {to}" if to else "")
    return f"{mail}{f' to {to}' if to else ''} is queued in Outgoing mail (no mail server is set)"


def link(path: str) -> str:
    """Return an absolute link built from the configured base URL, never the Host header."""
    return current_app.config["BASE_URL"].rstrip("/") + path


def subject(kind: str, **values) -> str:
    """Return the subject of an e-mail of this kind (``values`` fill its blanks)."""
    return SUBJECTS[kind].format(**values)


def sealed(path: str, raw: str) -> dict:
    """Return the stored form of a link to ``path + raw``: the path and the token's digest only."""
    return {"path": path, "token": tokens.digest(raw)}


def enqueue(
    kind: str,
    to: str,
    subject: str,
    *,
    account: Account | None = None,
    user_id: int | None = None,
    membership_id: int | None = None,
    sealed_link: dict | None = None,
    deferred: bool = False,
    **context,
) -> OutboxMessage:
    """Render templates/email/<kind>.txt/.html and add the message to the outbox.

    With ``sealed_link`` (from ``sealed``) only the context is stored and the link is
    rendered when the message is delivered; ``context`` must then be JSON. ``deferred`` stores
    only the context too (a digest that grows until it is sent, rendered through ``LOADERS``).
    """
    if sealed_link is not None or deferred:
        body_text = body_html = None
        stored = dict(context, **({SEALED: sealed_link} if sealed_link is not None else {}))
    else:
        body_text, body_html = render(kind, account, subject, context)
        stored = None
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
        context=stored,
    )
    db.session.add(message)
    return message


def render(kind: str, account: Account | None, subject: str, context: dict) -> tuple[str, str]:
    """Return the text and HTML bodies of templates/email/<kind>."""
    context = dict(context, account=account, subject=subject)
    return (
        render_template(f"email/{kind}.txt", **context),
        render_template(f"email/{kind}.html", **context),
    )


def bodies(message: OutboxMessage, url: str | None = None) -> tuple[str, str | None]:
    """Return a message's bodies; one queued with only its context is rendered now.

    A sealed link shows as ``url`` when given (delivery), else as ``HIDDEN_LINK``.
    """
    if message.body_text is not None:
        return message.body_text, message.body_html
    context = dict(message.context or {})
    if context.pop(SEALED, None) is not None:
        context["url"] = url if url is not None else HIDDEN_LINK
    if message.kind in LOADERS:
        context = LOADERS[message.kind](message.account_id, context)
    account = db.session.get(Account, message.account_id) if message.account_id else None
    return render(message.kind, account, message.subject, context)


def _refused_invitations(account_id: int | None, context: dict) -> dict:
    """Fill a refusal digest with the people it names, as they stand when it is read.

    The digest stores membership ids only: a person deleted or purged meanwhile is simply not
    listed (no address outlives its membership in the outbox).
    """
    ids = context.get("membership_ids") or []
    rows = db.session.execute(
        sa.select(Membership.id, people.shown_name(), User.email, Membership.invite_error)
        .join(User, User.id == Membership.user_id)
        .where(Membership.id.in_(ids), Membership.account_id == account_id,
               Membership.deleted_at.is_(None))
        .order_by(Membership.id)
    ).all()
    refusals = [{"name": name, "email": email, "reply": reply, "url": link(USER_PATH.format(id_))}
                for id_, name, email, reply in rows]
    return dict(context, refusals=refusals, more=max(0, context.get("total", 0) - len(ids)))


# Kinds whose stored context is completed when the message is read (rendered or sent).
LOADERS = {"invite_refused": _refused_invitations}
USER_PATH = "/admin/participants/users/{}"


def delivery_bodies(message: OutboxMessage) -> tuple[str, str | None]:
    """Return the bodies to send; a sealed link gets its token now (no commit).

    The placeholder token is given a fresh random value and the message keeps only the new
    digest, so a retry can do it again. Raises LinkGone when the token was used, replaced
    or expired meanwhile: the newer message carries the link that works.
    """
    seal = (message.context or {}).get(SEALED)
    if seal is None:
        return bodies(message)
    raw = tokens.rekey(seal["token"])
    if raw is None:
        raise LinkGone("Not sent: its link was used, replaced by a newer one, or expired.")
    message.context = dict(message.context, **{SEALED: sealed(seal["path"], raw)})
    return bodies(message, url=link(seal["path"] + raw))


_SECRET_LINK = re.compile(r"\S*(?:" + "|".join(re.escape(p) for p in SECRET_PATHS) + r")[\w.~-]+")


def preview(message: OutboxMessage) -> str:
    """Return the text body as a page may show it: every link that grants a credential hidden.

    Sealed links are not stored at all; a link stored before links were sealed is hidden too.
    No invitation link is ever readable in Outgoing mail (issue 15): the one way an admin hands
    a new person's link over is Copy invitation link (invitations.copy_invitation_link), which
    mints a fresh one and is audited.
    """
    return _SECRET_LINK.sub(HIDDEN_LINK, bodies(message)[0])
