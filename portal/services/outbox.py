"""The durable outbox: claim due messages, send them through Flask-Mail, retry or fail them.

Delivery is at least once, with the smallest window SMTP allows: a claim is a short lease
(``leases``) renewed while the deliverer lives, and each message is recorded as sent in its own
commit right after the server accepted it (one SMTP connection per batch, so no QUIT or
reconnect lies in between). A deliverer that dies in that moment, after the server's "250" and
before the commit, leaves the message to be sent again once its lease has passed; the copy
carries the same ``X-Portal-Message-Id``. Nothing else is ever sent twice, and nothing claimed
waits longer than one lease.
"""
import smtplib
import socket
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_mail import Message

from portal.extensions import db
from portal.extensions import mail as flask_mail
from portal.models import OutboxMessage
from portal.models import utcnow
from portal.services import leases
from portal.services import mail
from portal.services import paging
from portal.services import scope

# Called with (message, server reply) when the server permanently refuses a recipient.
REFUSAL_HANDLERS: dict = {}
# Called with the message when the server accepted it (in the transaction that records it).
DELIVERY_HANDLERS: dict = {}


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return f"{self.sent} sent, {self.retrying} to retry, {self.failed} failed"


def _on_refused(kind: str, handlers: dict = REFUSAL_HANDLERS):
    def register(func):
        handlers[kind] = func
        return func

    return register


@_on_refused("invite")
def _invite_refused(message: OutboxMessage, reply: str) -> None:
    from portal.services import invitations

    invitations.invitation_refused(message, reply)


@_on_refused("invite", DELIVERY_HANDLERS)
def _invite_sent(message: OutboxMessage) -> None:
    from portal.services import invitations

    invitations.invitation_sent(message)


def get_message(actor, message_id) -> OutboxMessage:
    """Return one message of the actor's account (NotFound for any other)."""
    return scope.get_in_account(OutboxMessage, message_id, actor)


def smtp_configured() -> bool:
    """Tell whether a mail server is configured (else mail stays readable in the portal)."""
    return mail.server_set()


def claim(worker: str, limit: int = 50) -> list[int]:
    """Atomically claim due messages for one deliverer; two deliverers never share one.

    One UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED): PostgreSQL skips rows
    another deliverer holds; SQLite serialises the statement (BEGIN IMMEDIATE). A message whose
    lease has passed (its deliverer died) is due again.
    """
    now = utcnow()
    due = (
        sa.select(OutboxMessage.id)
        .where(
            sa.or_(
                sa.and_(OutboxMessage.state == "pending", OutboxMessage.next_attempt_at <= now),
                sa.and_(
                    OutboxMessage.state == "sending",
                    sa.or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
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
            .values(state="sending", claimed_by=worker, claimed_at=now,
                    lease_until=now + leases.duration()),
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


def _renew(worker: str):
    table = OutboxMessage.__table__

    def renew(conn: sa.Connection, lease_until) -> None:
        conn.execute(sa.update(table)
                     .where(table.c.claimed_by == worker, table.c.state == "sending")
                     .values(lease_until=lease_until))

    return renew


class _Connection:
    """One SMTP connection for a batch, opened at the first message and again after a break."""

    def __init__(self):
        self.connection = None

    def send(self, mail_message: Message) -> None:
        reused = self.connection is not None
        if not reused:
            self.connection = flask_mail.connect().__enter__()
        try:
            self.connection.send(mail_message)
        except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused):
            raise  # a reply about this message: the connection stays usable (smtplib sent RSET)
        except OSError:
            self.connection = None
            if not reused:
                raise
            # The server closed a connection kept from the previous message: once more, anew.
            self.send(mail_message)

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.__exit__(None, None, None)  # QUIT: after every message is recorded
            except (smtplib.SMTPException, OSError):
                pass


def _message(message: OutboxMessage) -> Message:
    """Build the e-mail of an outbox row (a sealed link gets its token now; no commit)."""
    body_text, body_html = mail.delivery_bodies(message)
    sender_addr = current_app.config["MAIL_DEFAULT_SENDER"]
    sender = (message.sender_name, sender_addr) if message.sender_name else sender_addr
    return Message(
        subject=message.subject,
        sender=sender,
        recipients=[message.to_addr],
        body=body_text,
        html=body_html,
        # The idempotency key: a receiving system can drop a repeat after a crash mid-send.
        extra_headers={"X-Portal-Message-Id": str(message.id)},
    )


def _send(connection: _Connection, mail_message: Message) -> None:
    connection.send(mail_message)


def deliver_due(worker: str | None = None, limit: int = 50) -> DeliveryReport:
    """Send the messages that are due, each claimed first; return what happened."""
    report = DeliveryReport()
    if not smtp_configured():
        return report
    worker = worker or leases.owner_name("outbox")
    claimed = claim(worker, limit)
    if not claimed:
        return report
    previous = socket.getdefaulttimeout()
    # Flask-Mail opens smtplib.SMTP without a timeout; a silent server must not hang us.
    socket.setdefaulttimeout(current_app.config["SMTP_TIMEOUT"])
    connection = _Connection()
    try:
        with leases.Heartbeat(_renew(worker)):
            for message_id in claimed:
                _deliver_one(connection, worker, message_id, report)
    finally:
        connection.close()
        socket.setdefaulttimeout(previous)
    return report


def _deliver_one(connection: _Connection, worker: str, message_id: int,
                 report: DeliveryReport) -> None:
    """Send one claimed message and record the outcome at once, in its own commit."""
    retry_for = timedelta(hours=current_app.config["OUTBOX_RETRY_HOURS"])
    message = db.session.get(OutboxMessage, message_id)
    if message is None or message.claimed_by != worker or message.state != "sending":
        return  # its lease passed and another deliverer took it over
    message.attempts += 1
    try:
        mail_message = _message(message)
    except mail.LinkGone as gone:
        # Nothing to retry: a newer message carries the link that works.
        message.state = "failed"
        message.last_error = str(gone)
        message.claimed_by = None
        report.failed += 1
        db.session.commit()
        return
    # The attempt, and a sealed link's new digest, are committed before the server sees the
    # link; no transaction stays open (or holds SQLite's lock) while the server answers.
    db.session.commit()
    try:
        _send(connection, mail_message)
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
        # Recorded the moment the server accepted it: the at-least-once window is this commit.
        message.state = "sent"
        message.sent_at = utcnow()
        message.last_error = None
        report.sent += 1
        handler = DELIVERY_HANDLERS.get(message.kind)
        if handler is not None:
            handler(message)  # in the same commit: an invitation stands "sent"
    db.session.commit()


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


PAGE_SIZE = 50
# The states Outgoing mail filters by, as its admins read them.
STATE_LABELS = {"pending": "Queued", "sending": "Sending", "sent": "Sent", "failed": "Failed"}


@dataclass(kw_only=True)
class OutboxPage(paging.Page):
    """One page of Outgoing mail, with the filter it shows and the account's totals by state."""

    state: str | None = None
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def all_messages(self) -> int:
        return sum(self.totals.values())


def list_page(actor, *, q: str = "", state: str | None = None, page: int = 1) -> OutboxPage:
    """Return one page of the account's outgoing mail, newest first, searched by recipient and
    subject and filtered by state, with the account's totals by state."""
    text = " ".join(q.split())[:200]
    state = state if state in STATE_LABELS else None
    where = [OutboxMessage.account_id == actor.account_id]
    if text:
        needle = text.lower()
        where.append(sa.or_(sa.func.lower(OutboxMessage.to_addr).contains(needle, autoescape=True),
                            sa.func.lower(OutboxMessage.subject).contains(needle, autoescape=True)))
    if state:
        where.append(OutboxMessage.state == state)
    totals = dict(db.session.execute(
        sa.select(OutboxMessage.state, sa.func.count())
        .where(OutboxMessage.account_id == actor.account_id)
        .group_by(OutboxMessage.state)
    ).all())
    total = None if text else (totals.get(state, 0) if state else sum(totals.values()))
    found = paging.fetch(
        sa.select(OutboxMessage.id).where(*where),
        sa.select(OutboxMessage).where(*where).order_by(OutboxMessage.id.desc()),
        page, PAGE_SIZE, q=text, total=total,
    )
    return OutboxPage(rows=found.rows, total=found.total, page=found.page, size=found.size,
                      q=text, state=state, totals={s: totals.get(s, 0) for s in STATE_LABELS})


def list_messages(account_id: int | None = None, limit: int = 50) -> list[OutboxMessage]:
    """Return the newest messages, of one account when given."""
    stmt = sa.select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if account_id is not None:
        stmt = stmt.where(OutboxMessage.account_id == account_id)
    return list(db.session.scalars(stmt))
