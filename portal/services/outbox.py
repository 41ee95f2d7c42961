"""The durable outbox: claim due messages, send them through Flask-Mail, retry or fail them."""
import smtplib
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_mail import Message

from portal.extensions import db
from portal.extensions import mail as flask_mail
from portal.models import OutboxMessage
from portal.models import utcnow
from portal.services import mail
from portal.services import scope

# A claim older than this is taken to belong to a deliverer that died; its message is due again.
STALE_CLAIM = timedelta(minutes=10)
# Called with (message, server reply) when the server permanently refuses a recipient.
REFUSAL_HANDLERS: dict = {}


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return f"{self.sent} sent, {self.retrying} to retry, {self.failed} failed"


def _on_refused(kind: str):
    def register(func):
        REFUSAL_HANDLERS[kind] = func
        return func

    return register


@_on_refused("invite")
def _invite_refused(message: OutboxMessage, reply: str) -> None:
    from portal.services import invitations

    invitations.invitation_refused(message, reply)


def get_message(actor, message_id) -> OutboxMessage:
    """Return one message of the actor's account (NotFound for any other)."""
    return scope.get_in_account(OutboxMessage, message_id, actor)


def smtp_configured() -> bool:
    """Tell whether a mail server is configured (else mail stays readable in the portal)."""
    return bool(current_app.config.get("MAIL_SERVER"))


def claim(worker: str, limit: int = 50) -> list[int]:
    """Atomically claim due messages for one deliverer; two deliverers never share one.

    One UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED): PostgreSQL skips rows
    another deliverer holds; SQLite serialises the statement (BEGIN IMMEDIATE).
    """
    now = utcnow()
    due = (
        sa.select(OutboxMessage.id)
        .where(
            sa.or_(
                sa.and_(OutboxMessage.state == "pending", OutboxMessage.next_attempt_at <= now),
                sa.and_(
                    OutboxMessage.state == "sending", OutboxMessage.claimed_at < now - STALE_CLAIM
                ),
            )
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(db.session.scalars(due))
    if ids:
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(state="sending", claimed_by=worker, claimed_at=now),
            execution_options={"synchronize_session": False},
        )
    db.session.commit()
    return ids


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 30 * 2 ** (attempts - 1)))


def _reply_text(exc: Exception) -> tuple[bool, str]:
    """Return (permanent, reply) for an SMTP exception."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
        return code >= 500, f"{code} {reply.decode(errors='replace')}"
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        reply = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return exc.smtp_code >= 500, f"{exc.smtp_code} {reply}"
    return False, f"{type(exc).__name__}: {exc}"


def _send(message: OutboxMessage) -> None:
    body_text, body_html = mail.delivery_bodies(message)
    sender_addr = current_app.config["MAIL_DEFAULT_SENDER"]
    sender = (message.sender_name, sender_addr) if message.sender_name else sender_addr
    mail_message = Message(
        subject=message.subject,
        sender=sender,
        recipients=[message.to_addr],
        body=body_text,
        html=body_html,
        # The idempotency key: a receiving system can drop a repeat after a crash mid-send.
        extra_headers={"X-Portal-Message-Id": str(message.id)},
    )
    flask_mail.send(mail_message)


def deliver_due(worker: str | None = None, limit: int = 50) -> DeliveryReport:
    """Send the messages that are due, each claimed first; return what happened."""
    report = DeliveryReport()
    if not smtp_configured():
        return report
    worker = worker or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    timeout = current_app.config["SMTP_TIMEOUT"]
    retry_for = timedelta(hours=current_app.config["OUTBOX_RETRY_HOURS"])
    for message_id in claim(worker, limit):
        message = db.session.get(OutboxMessage, message_id)
        if message is None or message.claimed_by != worker:
            continue
        message.attempts += 1
        previous = socket.getdefaulttimeout()
        # Flask-Mail opens smtplib.SMTP without a timeout; a silent server must not hang us.
        socket.setdefaulttimeout(timeout)
        try:
            _send(message)
        except mail.LinkGone as gone:
            # Nothing to retry: a newer message carries the link that works.
            message.state = "failed"
            message.last_error = str(gone)
            message.claimed_by = None
            report.failed += 1
        except (smtplib.SMTPException, OSError) as exc:
            permanent, reply = _reply_text(exc)
            message.last_error = reply
            message.claimed_by = None
            if permanent or utcnow() - message.created_at >= retry_for:
                message.state = "failed"
                report.failed += 1
                handler = REFUSAL_HANDLERS.get(message.kind)
                if permanent and handler is not None:
                    handler(message, reply)
            else:
                message.state = "pending"
                message.next_attempt_at = utcnow() + _backoff(message.attempts)
                report.retrying += 1
        else:
            message.state = "sent"
            message.sent_at = utcnow()
            message.last_error = None
            report.sent += 1
        finally:
            socket.setdefaulttimeout(previous)
        db.session.commit()
    return report


def deliver_all_due(worker: str | None = None) -> DeliveryReport:
    """Deliver in rounds until nothing is due now; return the totals."""
    total = DeliveryReport()
    while True:
        report = deliver_due(worker)
        total.sent += report.sent
        total.retrying += report.retrying
        total.failed += report.failed
        if not (report.sent or report.retrying or report.failed):
            return total


def pending_count() -> int:
    """Return how many messages wait to be sent."""
    return db.session.scalar(
        sa.select(sa.func.count(OutboxMessage.id)).where(OutboxMessage.state.in_(("pending", "sending")))
    )


def list_messages(account_id: int | None = None, limit: int = 50) -> list[OutboxMessage]:
    """Return the newest messages, of one account when given."""
    stmt = sa.select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if account_id is not None:
        stmt = stmt.where(OutboxMessage.account_id == account_id)
    return list(db.session.scalars(stmt))
