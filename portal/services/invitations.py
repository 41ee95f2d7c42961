"""Invitations: add a person to an account, send and accept the invitation, handle refusals."""
import dataclasses
import json
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from portal.extensions import db
from portal.models import Account
from portal.models import ActionToken
from portal.models import Invitation
from portal.models import InviteState
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import Role
from portal.models import TokenPurpose
from portal.models import User
from portal.models import utcnow
from portal.services import audit
from portal.services import bulk
from portal.services import invitation_states
from portal.services import jobs
from portal.services import mail
from portal.services import passwords
from portal.services import scope
from portal.services import people
from portal.services import tokens
from portal.services import users
from portal.services.errors import ServiceError


# People per batch that queue_invitations reads and stages.
BATCH = 5_000
# The people one queue_invitations call writes to, for the length of its transaction.
STAGE = bulk.staging_table(
    "invitation_stage",
    sa.Column("membership_id", sa.Integer),
    sa.Column("user_id", sa.Integer),
    sa.Column("email", sa.String(254)),
    sa.Column("kind", sa.String(32)),
    sa.Column("token_hash", sa.String(64)),
    sa.Column("password_stamp", sa.String(16)),
    sa.Column("context", sa.Text),
)


def _invitees(memberships: sa.Select) -> sa.Select:
    """Return what queue_invitations reads of each membership ``memberships`` selects (ids)."""
    return (
        sa.select(Membership.id, User.id, User.email, people.shown_name(), User.password_hash)
        .join(User, User.id == Membership.user_id)
        .where(Membership.id.in_(memberships))
        .order_by(Membership.id)
    )


def queue_invitations(actor, account: Account, memberships: sa.Select, *,
                      mark_invited: bool = False, stamped: bool = False) -> int:
    """Write an invitation link and its e-mail for each membership ``memberships`` selects.

    The one writer of invitations, set-wise: New User, Resend Invite, an e-mail change and the
    CSV import all come here with a SELECT of membership ids. Earlier unused links of those
    people to this account stop working. Every link is sealed: only the recipient ever gets it
    (DESIGN §1; the one way an admin hands a link over is ``copy_invitation_link``); someone who
    has a password joins only by accepting it with that password. With ``mark_invited`` the
    memberships invited are marked so ("invited", no refusal). Each invitation then stands
    queued until its e-mail is delivered, and expires with its link (``stamped``: the caller
    just wrote the expiry in its own INSERT, the CSV import, so 100,000 rows are not updated). E-mails are stored as their
    context, rendered when sent, so 100,000 cost a few statements. The caller commits; returns
    how many.
    """
    now = utcnow()
    expires = now + timedelta(hours=account.invite_valid_hours)
    inviter = actor.user.name if actor is not None and actor.user is not None else None
    # The JSON of each e-mail's context, written by hand around the parts that vary: a json.dumps
    # of each dict would cost a tenth of a 100,000-row import.
    tail = ", " + json.dumps({"inviter": inviter, "valid_hours": account.invite_valid_hours})[1:]
    seal = f'"{mail.SEALED}": {{"path": "/invite/", "token": '
    no_password = passwords.stamp_of(None)
    conn = db.session.connection()
    bulk.fresh(conn, STAGE)
    count = 0
    # In batches, so 100,000 people never stand in memory at once; read as plain rows.
    db.session.flush()
    for rows in bulk.batches(conn, _invitees(memberships), BATCH):
        staged = []
        for (membership_id, user_id, email, name, password_hash), (_raw, digest) in zip(
                rows, tokens.new_pairs(len(rows))):
            # Every link is sealed: only its recipient ever reads it (an admin hands over a new
            # person's link through copy_invitation_link, which mints a fresh one).
            context = f'{{"name": {json.dumps(name)}, {seal}"{digest}"}}{tail}'
            stamp = no_password if password_hash is None else passwords.stamp_of(password_hash)
            staged.append((membership_id, user_id, email, "invite", digest, stamp, context))
        bulk.load(conn, STAGE, staged)
        count += len(staged)
    bulk.analyze(conn, STAGE)
    linked = STAGE.c.token_hash.is_not(None)
    tokens.supersede(sa.select(STAGE.c.user_id).where(linked), TokenPurpose.INVITE, account.id)
    conn.execute(
        sa.insert(ActionToken.__table__).from_select(
            ["user_id", "account_id", "purpose", "token_hash", "password_stamp", "expires_at",
             "created_at"],
            sa.select(
                STAGE.c.user_id,
                sa.literal(account.id),
                sa.literal(TokenPurpose.INVITE.value),
                STAGE.c.token_hash,
                STAGE.c.password_stamp,
                sa.literal(expires, sa.DateTime),
                sa.literal(now, sa.DateTime),
            )
            .where(linked)
            # In index order: inserting random digests in order is far cheaper for the B-tree.
            .order_by(STAGE.c.token_hash),
        )
    )
    context = STAGE.c.context
    if conn.dialect.name != "sqlite":
        # SQLite keeps JSON as text; elsewhere the text must become the JSON type.
        context = sa.cast(context, OutboxMessage.__table__.c.context.type)
    subject = sa.literal(mail.subject("invite", account=account.name))
    conn.execute(
        sa.insert(OutboxMessage.__table__).from_select(
            ["account_id", "user_id", "membership_id", "kind", "to_addr", "sender_name",
             "subject", "context", "state", "attempts", "next_attempt_at", "created_at"],
            sa.select(
                sa.literal(account.id),
                STAGE.c.user_id,
                STAGE.c.membership_id,
                STAGE.c.kind,
                STAGE.c.email,
                sa.literal(account.sender_name or account.name),
                subject,
                context,
                sa.literal("pending"),
                sa.literal(0),
                sa.literal(now, sa.DateTime),
                sa.literal(now, sa.DateTime),
            ),
        )
    )
    # Each invitation is queued until its e-mail goes out, and runs out when its link does.
    standing = {} if stamped else {"invite_expires_at": expires, "invite_sent_at": None}
    if mark_invited:
        standing.update(invite_state=InviteState.INVITED.value, invite_error=None)
    if standing:
        conn.execute(
            sa.update(Membership.__table__)
            .where(Membership.__table__.c.id.in_(sa.select(STAGE.c.membership_id)))
            .values(**standing)
        )
    STAGE.drop(conn)
    return count


def send_invitation(actor, membership: Membership) -> None:
    """Issue a fresh invitation link (older ones stop working) and queue the e-mail."""
    membership.invite_state = InviteState.INVITED
    membership.invite_error = None
    db.session.flush()
    queue_invitations(actor, membership.account, sa.select(sa.literal(membership.id)))


@dataclass(frozen=True)
class ResendReport:
    """What Resend Invite did: how many got a new link, how many had signed in, how many
    had been invited moments ago (and how many minutes ago the last of those was)."""

    resent: int
    skipped: int
    recent: int = 0
    recent_minutes: int = 0
    pause_minutes: int = 0
    # A selection over BULK_BACKGROUND_ROWS runs as a background job: how many it names.
    queued: int = 0

    def __str__(self) -> str:
        if self.queued:
            return (f"Resending invitations to {self.queued:,} selected users in the background; "
                    "people who have already signed in, or were invited moments ago, are skipped.")
        ago = f"{self.recent_minutes} minute{'' if self.recent_minutes == 1 else 's'} ago"
        if self.recent and not self.resent and not self.skipped:
            if self.recent == 1:
                return f"An invitation was already sent {ago}; no new one was sent."
            return f"Invitations were already sent to these {self.recent:,} users; none was resent."
        text = f"Invite resent to {self.resent:,} user{'' if self.resent == 1 else 's'}"
        if self.resent and not mail.server_set():
            text += " (queued in Outgoing mail: no mail server is set)"
        if self.skipped:
            text += f"; {self.skipped:,} skipped because they have already signed in"
        if self.recent:
            text += (
                f"; {self.recent:,} skipped because an invitation was already sent to them "
                f"in the last {self.pause_minutes} minutes"
            )
        return text + "."


def resend_invites(actor, selection: users.Selection) -> ResendReport:
    """Send a new invitation link to the selected users who never signed in (set-wise).

    Earlier links of those people stop working; people who have signed in are skipped and
    counted, and so are people invited to this account less than INVITE_RESEND_MINUTES ago
    (at most one invitation per person per pause, however many admins click at once). Works
    in a handful of statements however many users are selected. A selection of more than
    BULK_BACKGROUND_ROWS users runs as a ``resend_invites`` background job (report.queued).
    """
    selected = users.count_selected(actor, selection)
    if selected > current_app.config["BULK_BACKGROUND_ROWS"]:
        job = jobs.enqueue("resend_invites", _selection_payload(actor, selection),
                           account_id=actor.account_id, here=True)
        db.session.commit()
        jobs.run_here(job)
        return ResendReport(resent=0, skipped=0, queued=selected)
    return _resend(actor, selection)


def _selection_payload(actor, selection: users.Selection) -> dict:
    # The selection as it was asked for: its filter is evaluated again when the job runs.
    return {"actor": actor.id, "ids": list(scope.parse_ids(selection.ids)),
            "all_matching": selection.all_matching,
            "filter": dataclasses.asdict(selection.filter)}


def run_resend_invites(run: jobs.Run) -> None:
    """The ``resend_invites`` job: Resend Invite to a large selection, done with its report."""
    actor = db.session.get(Membership, run.payload["actor"])
    selection = users.Selection(ids=tuple(run.payload["ids"]),
                                all_matching=run.payload["all_matching"],
                                filter=users.UserFilter(**run.payload["filter"]))
    _resend(actor, selection, before_commit=lambda report: run.done({"summary": str(report)}))


def _resend(actor, selection: users.Selection,
            before_commit: Callable[["ResendReport"], None] | None = None) -> ResendReport:
    chosen = users.selected_ids(actor, selection)
    account: Account = actor.account
    pause = current_app.config["INVITE_RESEND_MINUTES"]
    selected = db.session.scalar(sa.select(sa.func.count()).select_from(chosen.subquery()))
    # Lock the waiting memberships first (PostgreSQL; SQLite's BEGIN IMMEDIATE already
    # serialises writers): a concurrent Resend Invite of the same people waits here until this
    # one commits, and every statement below then sees the invitation it sent.
    waiting = db.session.scalars(
        sa.select(Membership.id)
        .where(Membership.id.in_(chosen), Membership.invite_state != InviteState.ACTIVE)
        .with_for_update()
    ).all()
    now = utcnow()  # after the lock: a resend that waited for it counts from when it got it
    # An invitation the mail server refused never arrived: resending it is not held back.
    recent_token = sa.select(ActionToken.id).where(
        Membership.invite_state != InviteState.INVITE_FAILED,
        ActionToken.user_id == Membership.user_id,
        ActionToken.account_id == account.id,
        ActionToken.purpose == TokenPurpose.INVITE,
        ActionToken.created_at > now - timedelta(minutes=pause),
    )
    last_sent = dict(
        db.session.execute(
            sa.select(ActionToken.user_id, sa.func.max(ActionToken.created_at))
            .where(
                ActionToken.user_id.in_(
                    sa.select(Membership.user_id).where(
                        Membership.id.in_(chosen),
                        Membership.invite_state != InviteState.ACTIVE,
                        sa.exists(recent_token),
                    )
                ),
                ActionToken.account_id == account.id,
                ActionToken.purpose == TokenPurpose.INVITE,
            )
            .group_by(ActionToken.user_id)
        ).all()
    )
    # Evaluated by each statement: so they run before the new tokens make everyone "recent".
    due = sa.select(Membership.id).where(
        Membership.id.in_(chosen),
        Membership.invite_state != InviteState.ACTIVE,
        ~sa.exists(recent_token),
    )
    user_ids = sa.select(Membership.user_id).where(Membership.id.in_(due))
    audit.record_many(actor, "invitation.resent", user_ids)
    resent = queue_invitations(actor, account, due, mark_invited=True)
    latest = max(last_sent.values(), default=None)
    report = ResendReport(
        resent=resent,
        skipped=selected - len(waiting),
        recent=len(waiting) - resent,
        recent_minutes=int((now - latest).total_seconds() // 60) if latest is not None else 0,
        pause_minutes=pause,
    )
    if before_commit is not None:
        before_commit(report)
    db.session.commit()
    return report


def resend_lapsed(actor) -> ResendReport:
    """Resend Invite to every live user of the account whose invitation expired or was refused."""
    lapsed = users.UserFilter(invitation=invitation_states.LAPSED)
    return resend_invites(actor, users.Selection(all_matching=True, filter=lapsed))


def add_person(
    actor,
    *,
    name: str,
    email: str,
    phone: str | None = None,
    role: str = Role.MEMBER,
    group_ids: Sequence[int] = (),
    invite: bool = True,
    before_commit: Callable[[Membership], None] | None = None,
) -> Membership:
    """Add a person to the actor's account: invite a new one, or link an existing person.

    ``invite=False`` sends no e-mail (an identity provider doing single sign-on); the person
    stays "invited" until they first sign in. ``before_commit`` is called with the new
    membership inside the same transaction (SCIM stores the provider's externalId).
    """
    from portal.services import groups

    name, email, phone = people.clean_person(name, email, phone)
    if role not in tuple(Role):
        raise ServiceError("Choose member or admin.", "role")
    account_id = actor.account_id
    user = people.find_person(email)
    if user is not None:
        existing = db.session.scalar(
            sa.select(Membership).where(
                Membership.account_id == account_id, Membership.user_id == user.id
            )
        )
        if existing is not None:
            if existing.deleted_at is not None:
                raise ServiceError(
                    "This person was deleted from this account; restore them from Deleted users.",
                    "email",
                )
            raise ServiceError("This person is already a user of this account.", "email")
    # Someone who is already a person elsewhere is added exactly as a new address is: invited,
    # under the name and phone typed here, shown to this account until they accept the
    # invitation with the password they already have (DESIGN §1). Their own name, phone and
    # password stay theirs; nothing of them shows here before they accept.
    known = user is not None
    try:
        if user is None:
            # Flushed with the membership below: one flush writes both rows.
            user = User(email=email, name=name, phone=phone)
            db.session.add(user)
        membership = Membership(
            account_id=account_id,
            user=user,
            role=role,
            invite_state=InviteState.INVITED,
            invited_by_id=actor.user_id,
            invited_name=name if known else None,
            invited_phone=phone if known else None,
        )
        db.session.add(membership)
        db.session.flush()
        if known:
            # The list sorts and finds them by the typed name (the insert trigger copied theirs).
            membership.sort_name = name.lower()
            db.session.flush()
    except sa.exc.IntegrityError:
        # Another admin added the same address a moment ago: the same answer as our own check.
        db.session.rollback()
        raise ServiceError("This person is already a user of this account.", "email") from None
    if group_ids:
        groups.insert_members(actor, group_ids, [membership.id])
    if invite:
        queue_invitations(actor, actor.account, sa.select(sa.literal(membership.id)))
    if before_commit is not None:
        before_commit(membership)
    # The account sees them as typed here, new or known elsewhere (their own name and e-mail
    # for a new person; the typed name while a known one's invitation waits): no read back.
    audit.record(actor, "user.added", subject=user, subject_label=f"{name} <{email}>",
                 role=role, **({} if invite else {"invited": False}))
    db.session.commit()
    return membership


def accept_invitation(raw: str, password: str | None) -> Membership:
    """Accept an invitation: a new person chooses a password; someone who already has one
    joins by giving it (never a new one). From then on the account sees their own name."""
    token = tokens.find(raw, TokenPurpose.INVITE)
    membership = db.session.scalar(
        sa.select(Membership).where(
            Membership.user_id == token.user_id,
            Membership.account_id == token.account_id,
            Membership.deleted_at.is_(None),
        )
    )
    if membership is None:
        raise tokens.LinkInvalid("This invitation was withdrawn.")
    user = membership.user
    if not password:
        raise ServiceError("Choose a password." if user.password_hash is None
                           else "Enter your password.", "password")
    if user.password_hash is None:
        passwords.check_new_password(user, password)
        passwords.store_password(user, password)
    elif not passwords.verify(user, password):
        audit.record(None, "invitation.wrong_password", subject=user,
                     account_id=membership.account_id, actor_user=user)
        db.session.commit()
        raise ServiceError("That is not your password. Use the one you sign in with.",
                           "password")
    tokens.spend(token)
    membership.invite_state = InviteState.ACTIVE
    membership.invite_error = None
    if membership.awaiting:
        # Their own name is kept: what the admin typed was only a placeholder (DESIGN §1).
        membership.invited_name = membership.invited_phone = None
        membership.sort_name = user.name.lower()
    audit.record(None, "invitation.accepted", subject=user, account_id=membership.account_id,
                 actor_user=user)
    db.session.commit()
    return membership


def invitation_details(raw: str) -> tuple[Membership, bool]:
    """Return the invited membership and whether the person still has to choose a password
    (False: they join with the password they already have)."""
    token = tokens.find(raw, TokenPurpose.INVITE)
    membership = db.session.scalar(
        sa.select(Membership).where(
            Membership.user_id == token.user_id, Membership.account_id == token.account_id
        )
    )
    if membership is None or membership.deleted_at is not None:
        raise tokens.LinkInvalid("This invitation was withdrawn.")
    return membership, membership.user.password_hash is None


def may_copy_link(membership: Membership) -> bool:
    """Tell whether an admin may copy this person's invitation link (an intranet without mail).

    Only while the invitation is pending, and only for someone with no password anywhere and
    no other account: whoever holds such a link can only set up that new, empty login. Never
    for someone known elsewhere (SECURITY.md, finding 1), never a reset link.
    """
    if membership.invite_state == InviteState.ACTIVE or membership.deleted_at is not None:
        return False
    if membership.awaiting or membership.user.password_hash is not None:
        return False
    return not db.session.scalar(sa.select(sa.exists().where(
        Membership.user_id == membership.user_id,
        Membership.account_id != membership.account_id,
        Membership.deleted_at.is_(None),
    )))


def copy_replaces_sent_link(membership: Membership) -> bool:
    """Tell whether copying a new link stops one that already went out (the admin is asked)."""
    return membership.invitation == Invitation.SENT


@dataclass(frozen=True)
class CopiedLink:
    """A freshly minted invitation link, for the admin to hand over (shown once, never stored)."""

    url: str
    expires_at: datetime
    # The e-mail still waiting in the outbox will not go out: its link was replaced.
    replaced_queued: bool


def copy_invitation_link(actor, membership_id) -> CopiedLink:
    """Mint a fresh invitation link for the admin to hand over; earlier links stop working.

    Links are sealed and minted at delivery (tokens.rekey), so nobody can read an earlier one:
    copying issues a new token (the older ones, and a queued e-mail's, stop working), marks
    the invitation sent, and is audited (never the token). Refused unless ``may_copy_link``.
    """
    membership = users.get_user(actor, membership_id)
    if not may_copy_link(membership):
        raise ServiceError("Only the invitation of someone who has no password and no other "
                           "organisation can be copied; use Resend Invite.")
    queued = membership.invitation == Invitation.QUEUED
    account = actor.account
    hours = account.invite_valid_hours
    raw = tokens.issue(membership.user, TokenPurpose.INVITE, timedelta(hours=hours),
                       account_id=account.id)
    now = utcnow()
    membership.invite_state = InviteState.INVITED
    membership.invite_error = None
    membership.invite_sent_at = now
    membership.invite_expires_at = now + timedelta(hours=hours)
    audit.record(actor, "invitation.link_copied", subject=membership.user)
    expires_at = membership.invite_expires_at
    db.session.commit()
    return CopiedLink(url=mail.link(f"/invite/{raw}"), expires_at=expires_at,
                      replaced_queued=queued)


def invitation_sent(message: OutboxMessage) -> None:
    """Mark the invitation this message carried sent (it was queued); no commit."""
    if message.membership_id is None:
        return
    db.session.execute(
        sa.update(Membership)
        .where(Membership.id == message.membership_id,
               Membership.invite_state == InviteState.INVITED)
        .values(invite_sent_at=message.sent_at or utcnow()),
        execution_options={"synchronize_session": False},
    )


# People a refusal digest names one by one; beyond them it counts (the link lists them all).
DIGEST_LISTED = 50
# The first key of the advisory lock on an admin's refusal digests (the second: their user id).
DIGEST_LOCK = 15_2


def invitation_refused(message: OutboxMessage, reply: str) -> None:
    """Mark the invitation refused (with the server's reply) and add it to the refusal digest
    of the admin who invited (every admin when that one is no longer an admin here)."""
    if message.membership_id is None:
        return
    membership = db.session.get(Membership, message.membership_id)
    if membership is None or membership.deleted_at is not None:
        return
    membership.invite_state = InviteState.INVITE_FAILED
    membership.invite_error = reply
    audit.record(None, "invitation.refused", subject=membership.user,
                 account_id=membership.account_id, reply=reply)
    for admin in _refusal_recipients(membership):
        _add_to_digest(membership, admin)


def _add_to_digest(membership: Membership, admin: User) -> None:
    """Name the refused invitation in the admin's open digest, or open one (no commit).

    A digest is one outbox message held back for REFUSAL_DIGEST_MINUTES after its first
    refusal: refusals meanwhile join it, so 2,000 bad addresses in an import make one notice
    listing them, with a link to Users filtered by refused invitations. Once it is claimed for
    sending it no longer takes more; the next refusal opens a new one. Locked while it grows
    (PostgreSQL; SQLite serialises writers), so two deliverers never lose a name; and on
    PostgreSQL the admin's digests are locked as a whole first (a transaction's advisory lock),
    so two deliverers that find none open one, not one each.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(DIGEST_LOCK, admin.id)))
    digest = db.session.scalar(
        sa.select(OutboxMessage).where(
            OutboxMessage.kind == "invite_refused",
            OutboxMessage.account_id == membership.account_id,
            OutboxMessage.user_id == admin.id,
            OutboxMessage.state == "pending",
            OutboxMessage.attempts == 0,
        ).order_by(OutboxMessage.id.desc()).limit(1).with_for_update()
    )
    if digest is None:
        account = membership.account
        digest = mail.enqueue(
            "invite_refused", admin.email, mail.subject("invite_refused", account=account.name),
            account=account, user_id=admin.id, deferred=True, name=admin.name,
            membership_ids=[], total=0, url=mail.link("/admin/participants/users/?invitation=refused"),
        )
        wait = timedelta(minutes=current_app.config["REFUSAL_DIGEST_MINUTES"])
        digest.next_attempt_at = utcnow() + wait
    context = dict(digest.context)
    if len(context["membership_ids"]) < DIGEST_LISTED:
        context["membership_ids"] = [*context["membership_ids"], membership.id]
    context["total"] += 1
    digest.context = context  # a new dict: the JSON column sees the change


def _refusal_recipients(membership: Membership) -> list[User]:
    """Return the admin who invited, or every admin when that one is no longer an admin here."""
    admins = sa.select(User).join(Membership, Membership.user_id == User.id).where(
        Membership.account_id == membership.account_id,
        Membership.role == Role.ADMIN,
        Membership.deleted_at.is_(None),
    )
    inviter = db.session.scalar(admins.where(User.id == membership.invited_by_id))
    return [inviter] if inviter is not None else list(db.session.scalars(admins.order_by(User.id)))
