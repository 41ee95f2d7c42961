"""Invitations: add a person to an account, send and accept the invitation, handle refusals."""
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from portal.extensions import db
from portal.models import Account
from portal.models import ActionToken
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import User
from portal.models import utcnow
from portal.services import audit
from portal.services import mail
from portal.services import passwords
from portal.services import people
from portal.services import tokens
from portal.services import users
from portal.services.errors import ServiceError


def send_invitation(actor, membership: Membership) -> OutboxMessage:
    """Issue a fresh invitation link (older ones stop working) and queue the e-mail."""
    account: Account = membership.account
    user: User = membership.user
    raw = tokens.issue(
        user, "invite", timedelta(hours=account.invite_valid_hours), account_id=account.id
    )
    membership.invite_state = "invited"
    membership.invite_error = None
    # Someone who has a password could be taken over through the link: it is sealed (only
    # the recipient gets it). A new person's link may be handed over by this account's admins.
    if user.password_hash is not None:
        link = {"sealed_link": mail.sealed("/invite/", raw)}
    else:
        link = {"url": mail.link(f"/invite/{raw}")}
    return mail.enqueue(
        "invite",
        user.email,
        f"You are invited to {account.name}",
        account=account,
        user_id=user.id,
        membership_id=membership.id,
        name=user.name,
        inviter=actor.user.name if actor is not None and actor.user is not None else None,
        valid_hours=account.invite_valid_hours,
        **link,
    )


@dataclass(frozen=True)
class ResendReport:
    """What Resend Invite did: how many got a new link, how many had signed in, how many
    had been invited moments ago (and how many minutes ago the last of those was)."""

    resent: int
    skipped: int
    recent: int = 0
    recent_minutes: int = 0
    pause_minutes: int = 0

    def __str__(self) -> str:
        ago = f"{self.recent_minutes} minute{'' if self.recent_minutes == 1 else 's'} ago"
        if self.recent and not self.resent and not self.skipped:
            if self.recent == 1:
                return f"An invitation was already sent {ago}; no new one was sent."
            return f"Invitations were already sent to these {self.recent:,} users; none was resent."
        text = f"Invite resent to {self.resent:,} user{'' if self.resent == 1 else 's'}"
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
    in a handful of statements however many users are selected.
    """
    chosen = users.selected_ids(actor, selection)
    account: Account = actor.account
    pause = current_app.config["INVITE_RESEND_MINUTES"]
    selected = db.session.scalar(sa.select(sa.func.count()).select_from(chosen.subquery()))
    # Lock the waiting memberships first (PostgreSQL; SQLite's BEGIN IMMEDIATE already
    # serialises writers): a concurrent Resend Invite of the same people waits here until this
    # one commits, and every statement below then sees the invitation it sent.
    waiting = db.session.execute(
        sa.select(Membership.id, User.id, User.email, User.name, User.password_hash)
        .join(User, User.id == Membership.user_id)
        .where(Membership.id.in_(chosen), Membership.invite_state != "active")
        .with_for_update(of=Membership)
    ).all()
    now = utcnow()  # after the lock: a resend that waited for it counts from when it got it
    # An invitation the mail server refused never arrived: resending it is not held back.
    recent_token = sa.select(ActionToken.id).where(
        Membership.invite_state != "invite_failed",
        ActionToken.user_id == Membership.user_id,
        ActionToken.account_id == account.id,
        ActionToken.purpose == "invite",
        ActionToken.created_at > now - timedelta(minutes=pause),
    )
    last_sent = dict(
        db.session.execute(
            sa.select(ActionToken.user_id, sa.func.max(ActionToken.created_at))
            .where(
                ActionToken.user_id.in_(
                    sa.select(Membership.user_id).where(
                        Membership.id.in_(chosen),
                        Membership.invite_state != "active",
                        sa.exists(recent_token),
                    )
                ),
                ActionToken.account_id == account.id,
                ActionToken.purpose == "invite",
            )
            .group_by(ActionToken.user_id)
        ).all()
    )
    people = [row for row in waiting if row[1] not in last_sent]
    # Evaluated by each statement: so they run before the new tokens make everyone "recent".
    due = sa.select(Membership.id).where(
        Membership.id.in_(chosen),
        Membership.invite_state != "active",
        ~sa.exists(recent_token),
    )
    user_ids = sa.select(Membership.user_id).where(Membership.id.in_(due))
    audit.record_many(actor, "invitation.resent", user_ids)
    db.session.execute(
        sa.update(Membership)
        .where(Membership.id.in_(due))
        .values(invite_state="invited", invite_error=None),
        execution_options={"synchronize_session": False},
    )
    links = tokens.issue_many(
        [(row[1], row[4]) for row in people],
        user_ids,
        "invite",
        timedelta(hours=account.invite_valid_hours),
        account_id=account.id,
    )
    invite_base = mail.link("/invite/")
    mail.enqueue_many(
        "invite",
        f"You are invited to {account.name}",
        (
            {
                "to": email,
                "user_id": user_id,
                "membership_id": membership_id,
                "name": name,
                **(
                    {mail.SEALED: mail.sealed("/invite/", links[user_id])}
                    if password_hash is not None
                    else {"url": invite_base + links[user_id]}
                ),
            }
            for membership_id, user_id, email, name, password_hash in people
        ),
        account=account,
        inviter=actor.user.name if actor.user is not None else None,
        valid_hours=account.invite_valid_hours,
    )
    db.session.commit()
    latest = max(last_sent.values(), default=None)
    return ResendReport(
        resent=len(people),
        skipped=selected - len(waiting),
        recent=len(waiting) - len(people),
        recent_minutes=int((now - latest).total_seconds() // 60) if latest is not None else 0,
        pause_minutes=pause,
    )


def add_person(
    actor,
    *,
    name: str,
    email: str,
    phone: str | None = None,
    role: str = "member",
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

    email = people.normalise_email(email)
    name = people.clean_name(name)
    phone = people.normalise_phone(phone)
    if role not in ("member", "admin"):
        raise ServiceError("Choose member or admin.", "role")
    account = actor.account
    user = people.find_person(email)
    if user is not None:
        existing = db.session.scalar(
            sa.select(Membership).where(
                Membership.account_id == account.id, Membership.user_id == user.id
            )
        )
        if existing is not None:
            if existing.deleted_at is not None:
                raise ServiceError(
                    "This person was deleted from this account; restore them from Deleted users.",
                    "email",
                )
            raise ServiceError("This person is already a user of this account.", "email")
    # A person who already exists keeps their own name, phone and password: identity-level
    # data belongs to them, not to the account that links them.
    linked = user is not None
    try:
        if user is None:
            user = User(email=email, name=name, phone=phone)
            db.session.add(user)
            db.session.flush()
        membership = Membership(
            account=account,
            user=user,
            role=role,
            invite_state="active" if linked and user.password_hash else "invited",
            invited_by_id=actor.user_id,
        )
        db.session.add(membership)
        db.session.flush()
    except sa.exc.IntegrityError:
        # Another admin added the same address a moment ago: the same answer as our own check.
        db.session.rollback()
        raise ServiceError("This person is already a user of this account.", "email") from None
    if group_ids:
        groups.insert_members(actor, group_ids, [membership.id])
    if invite and linked and user.password_hash:
        mail.enqueue(
            "added_to_account",
            user.email,
            f"You were added to {account.name}",
            account=account,
            user_id=user.id,
            name=user.name,
            url=mail.link(f"/login?login_hint={user.email}"),
        )
    elif invite:
        send_invitation(actor, membership)
    if before_commit is not None:
        before_commit(membership)
    audit.record(actor, "user.added", subject=user, role=role, linked=linked,
                 **({} if invite else {"invited": False}))
    db.session.commit()
    return membership


def accept_invitation(raw: str, password: str | None) -> Membership:
    """Accept an invitation: a new person sets a password; an existing one only confirms."""
    token = tokens.find(raw, "invite")
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
    if user.password_hash is None:
        if not password:
            raise ServiceError("Choose a password.", "password")
        passwords.check_new_password(user, password)
        passwords.store_password(user, password)
    tokens.spend(token)
    membership.invite_state = "active"
    membership.invite_error = None
    audit.record(None, "invitation.accepted", subject=user, account_id=membership.account_id,
                 actor_user=user)
    db.session.commit()
    return membership


def invitation_details(raw: str) -> tuple[Membership, bool]:
    """Return the invited membership and whether the person still has to choose a password."""
    token = tokens.find(raw, "invite")
    membership = db.session.scalar(
        sa.select(Membership).where(
            Membership.user_id == token.user_id, Membership.account_id == token.account_id
        )
    )
    if membership is None or membership.deleted_at is not None:
        raise tokens.LinkInvalid("This invitation was withdrawn.")
    return membership, membership.user.password_hash is None


def invitation_refused(message: OutboxMessage, reply: str) -> None:
    """Mark the invited membership "invite failed" and tell the admin who invited."""
    if message.membership_id is None:
        return
    membership = db.session.get(Membership, message.membership_id)
    if membership is None or membership.deleted_at is not None:
        return
    membership.invite_state = "invite_failed"
    membership.invite_error = reply
    audit.record(None, "invitation.refused", subject=membership.user,
                 account_id=membership.account_id, reply=reply)
    for admin in _refusal_recipients(membership):
        mail.enqueue(
            "invite_refused",
            admin.email,
            f"The invitation to {membership.user.email} was not accepted by the mail server",
            account=membership.account,
            user_id=admin.id,
            # The notice names the invitee: the purge finds it through their membership.
            membership_id=membership.id,
            name=admin.name,
            invitee=membership.user,
            reply=reply,
            url=mail.link(f"/admin/participants/users/{membership.id}"),
        )


def _refusal_recipients(membership: Membership) -> list[User]:
    """Return the admin who invited, or every admin when that one is no longer an admin here."""
    admins = sa.select(User).join(Membership, Membership.user_id == User.id).where(
        Membership.account_id == membership.account_id,
        Membership.role == "admin",
        Membership.deleted_at.is_(None),
    )
    inviter = db.session.scalar(admins.where(User.id == membership.invited_by_id))
    return [inviter] if inviter is not None else list(db.session.scalars(admins.order_by(User.id)))
