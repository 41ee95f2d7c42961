"""One user of an account: edit the profile, change the role, mail a reset link or a report.

The person (name, e-mail, phone, password) is shared by every account they belong to, so an
admin changes identity-level data only for people wholly inside accounts they administer
(DESIGN §1); everyone else gets the Reset Password link instead.
"""
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from portal.extensions import db
from portal.models import ActionToken
from portal.models import AuditEvent
from portal.models import InviteState
from portal.models import Membership
from portal.models import Role
from portal.models import TokenPurpose
from portal.models import User
from portal.models import utcnow
from portal.services import audit
from portal.services import audit_trail
from portal.services import auth
from portal.services import invitations
from portal.services import mail
from portal.services import people
from portal.services import scope
from portal.services import tokens
from portal.services import users
from portal.services.errors import Conflict
from portal.services.errors import ServiceError

STALE = (
    "Someone else changed this user after you opened the form, so your changes were not saved. "
    "The form now shows the current values; make your changes again."
)
IDENTITY_ELSEWHERE = (
    "This person also belongs to an organisation you don't administer, so only they can change "
    "their e-mail address. Send them a Reset Password link if they cannot sign in."
)
# How soon a second admin-triggered reset link to the same person is refused (double clicks).
RESET_PAUSE = timedelta(minutes=1)
REPORT_PERIODS = (7, 30, 90)
REPORT_MAX_EVENTS = 200


def can_change_identity(actor, user: User) -> bool:
    """Tell whether every live membership of the person is in an account the actor administers."""
    if actor.user_id is None and not getattr(actor, "scoped", False):
        return True  # the operator (CLI) acts for the whole installation
    administered = sa.select(Membership.account_id).where(
        Membership.user_id == actor.user_id,
        Membership.role == Role.ADMIN,
        Membership.deleted_at.is_(None),
    ) if actor.user_id is not None else sa.select(sa.literal(actor.account_id))  # SCIM token
    elsewhere = db.session.scalar(
        sa.select(sa.func.count(Membership.id)).where(
            Membership.user_id == user.id,
            Membership.deleted_at.is_(None),
            Membership.account_id.not_in(administered),
        )
    )
    return not elsewhere


@dataclass(frozen=True)
class ProfileUpdate:
    """What an edit changed: field names, and whether a new invitation went out."""

    changed: tuple[str, ...]
    invited: bool = False

    def __str__(self) -> str:
        if not self.changed:
            return "Nothing to save: the profile is unchanged."
        text = "Saved the " + ", ".join(self.changed).replace("_", " ") + "."
        invited = mail.on_its_way("A new invitation", "the new address")
        return text + (f" {invited}." if self.invited else "")


def update_profile(
    actor, membership_id, *, name: str, email: str, phone: str | None, version: int | None,
    include_deleted: bool = False, commit: bool = True,
) -> ProfileUpdate:
    """Change a user's name, e-mail and phone, if nobody changed them since ``version``.

    A changed e-mail of someone who never signed in sends a new invitation there (the old link
    stops working); of someone who has, a notice goes to the old address. The e-mail may only
    change when the actor administers all of the person's accounts. ``include_deleted`` lets
    an identity provider keep a deactivated (deleted, restorable) user current; they get no
    invitation while deleted. ``commit=False``: one step of a larger use case, which commits
    (SCIM's PUT and PATCH change a user in one transaction).
    """
    membership = scope.get_in_account(Membership, membership_id, actor,
                                      include_deleted=include_deleted)
    user = membership.user
    name, email, phone = people.clean_person(name, email, phone)
    if version != user.version:
        raise Conflict(STALE)
    if membership.awaiting:
        return _update_awaiting(actor, membership, name=name, email=email, phone=phone,
                                commit=commit)
    changes = {
        key: (getattr(user, key), value)
        for key, value in (("name", name), ("email", email), ("phone", phone))
        if getattr(user, key) != value
    }
    if not changes:
        return ProfileUpdate(())
    if "email" in changes:
        if not can_change_identity(actor, user):
            raise ServiceError(IDENTITY_ELSEWHERE, "email")
        other = people.find_person(email)
        if other is not None and other.id != user.id:
            raise ServiceError("Another person already uses this e-mail address.", "email")
    old_email = user.email
    for key, (_old, value) in changes.items():
        setattr(user, key, value)
    invited = False
    try:
        db.session.flush()  # the version column refuses a concurrent save here
    except so.exc.StaleDataError:
        db.session.rollback()
        raise Conflict(STALE) from None
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise ServiceError("Another person already uses this e-mail address.", "email") from None
    if "email" in changes:
        if membership.invite_state != InviteState.ACTIVE:
            if membership.deleted_at is None:  # a deletion withdrew the invitation
                invitations.send_invitation(actor, membership)
                invited = True
        else:
            mail.enqueue(
                "email_changed",
                old_email,
                mail.subject("email_changed"),
                account=membership.account,
                user_id=user.id,
                name=user.name,
                new_email=user.email,
                url=mail.link(f"/login?login_hint={user.email}"),
            )
    audit.record(
        actor, "user.updated", subject=user,
        changes={key: [old, new] for key, (old, new) in changes.items()},
    )
    if commit:
        db.session.commit()
    return ProfileUpdate(tuple(changes), invited)


def _update_awaiting(actor, membership: Membership, *, name: str, email: str,
                     phone: str | None, commit: bool = True) -> ProfileUpdate:
    """Edit what this account typed for someone known elsewhere who has not accepted yet.

    The person's own name and phone are not this account's to see or change (DESIGN §1): the
    typed ones change. A new e-mail invites that address instead (the old link stops working),
    answering as for anyone who never signed in.
    """
    user = membership.user
    changes = {
        key: (old, value)
        for key, old, value in (("name", membership.invited_name, name),
                                ("email", user.email, email),
                                ("phone", membership.invited_phone, phone))
        if old != value
    }
    if not changes:
        return ProfileUpdate(())
    membership.invited_name, membership.invited_phone = name, phone
    if "email" in changes:
        if membership.deleted_at is not None:
            raise ServiceError("Restore this person before changing their e-mail address.",
                               "email")
        other = people.find_person(email)
        if other is not None and db.session.scalar(sa.select(Membership.id).where(
                Membership.account_id == membership.account_id, Membership.user_id == other.id)):
            raise ServiceError("This person is already a user of this account.", "email")
        tokens.supersede(sa.select(sa.literal(user.id)), TokenPurpose.INVITE,
                         membership.account_id)
        if other is None:
            other = User(email=email, name=name, phone=phone)
            db.session.add(other)
            db.session.flush()
            membership.invited_name = membership.invited_phone = None
        membership.user = other
        db.session.flush()
        membership.sort_email = email
    db.session.flush()
    membership.sort_name = membership.shown_name.lower()
    if "email" in changes:
        invitations.send_invitation(actor, membership)
    audit.record(
        actor, "user.updated", subject=membership.user,
        changes={key: [old, new] for key, (old, new) in changes.items()},
    )
    if commit:
        db.session.commit()
    return ProfileUpdate(tuple(changes), "email" in changes)


def change_role(actor, membership_id, role: str) -> Membership:
    """Make a user an admin or a member; the last admin of the account stays an admin (409)."""
    if role not in tuple(Role):
        raise ServiceError("Choose member or admin.", "role")
    membership = users.get_user(actor, membership_id)
    if membership.role == role:
        return membership
    if role == Role.MEMBER:
        # Lock the account's admins first, so two admins demoting each other take turns.
        admins = db.session.scalars(
            sa.select(Membership.id)
            .where(
                Membership.account_id == actor.account_id,
                Membership.role == Role.ADMIN,
                Membership.deleted_at.is_(None),
            )
            .with_for_update()
        ).all()
        if admins == [membership.id]:
            raise Conflict(
                f"{membership.user.name} is the last admin of this account. Make someone else "
                "an admin first.",
                "role",
            )
    old = membership.role
    membership.role = role
    audit.record(actor, "user.role_changed", subject=membership.user, old=old, new=role)
    db.session.commit()
    return membership


def send_password_reset(actor, membership_id) -> User:
    """Mail the user a link to choose a new password (the admin never sees or sets it).

    Unlike the self-service form, which silently sends at most a few links an hour so it
    cannot be used to probe addresses or flood an inbox, this one is signed in, audited and
    says what it did; it only refuses a second link within a minute (a double click).
    """
    membership = users.get_user(actor, membership_id)
    user = membership.user
    if user.password_hash is None:
        raise ServiceError(
            f"{user.name} has not chosen a password yet: use Resend Invite instead."
        )
    recent = db.session.scalar(
        sa.select(sa.func.count(ActionToken.id)).where(
            ActionToken.user_id == user.id,
            ActionToken.purpose == TokenPurpose.RESET,
            ActionToken.created_at > utcnow() - RESET_PAUSE,
        )
    )
    if recent:
        raise ServiceError(
            f"A reset link was just sent to {user.email}; it stays valid for "
            f"{current_app.config['RESET_VALID_MINUTES']} minutes."
        )
    auth.mail_reset_link(user, membership.account)
    audit.record(actor, "password.reset_sent", subject=user)
    db.session.commit()
    return user


@dataclass(frozen=True)
class ReportEvent:
    """One line of the activity e-mail: when, what, by whom (when not the person), about what."""

    at: datetime
    what: str
    by: str
    concerns: str


@dataclass(frozen=True)
class ActivityReport:
    """A person's activity in one account over a period, from the audit trail."""

    days: int
    counts: list[tuple[str, int]]
    events: list[ReportEvent]
    total: int


def activity_report(actor, membership: Membership, days: int) -> ActivityReport:
    """Summarise the audit events by or about the person in the actor's account."""
    since = utcnow() - timedelta(days=days)
    about = sa.and_(
        AuditEvent.account_id == actor.account_id,
        AuditEvent.created_at >= since,
        sa.or_(
            AuditEvent.subject_user_id == membership.user_id,
            AuditEvent.actor_user_id == membership.user_id,
        ),
    )
    counts = db.session.execute(
        sa.select(AuditEvent.action, sa.func.count())
        .where(about)
        .group_by(AuditEvent.action)
        .order_by(sa.func.count().desc(), AuditEvent.action)
    ).all()
    events = [
        ReportEvent(
            at=e.created_at,
            what=audit_trail.what_label(e.action),
            by=e.actor_label if e.actor_label and e.actor_user_id != e.subject_user_id else "",
            # The group, device or taskstream the event concerns, named (issue 15, item 4).
            concerns=audit_trail.concerning(e.details, e.action),
        )
        for e in db.session.scalars(
            sa.select(AuditEvent)
            .where(about)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(REPORT_MAX_EVENTS)
        )
    ]
    return ActivityReport(
        days=days,
        counts=[(audit_trail.what_label(action), n) for action, n in counts],
        events=events,
        total=sum(n for _action, n in counts),
    )


def send_activity_report(actor, membership_id, days: int) -> ActivityReport:
    """Mail the person a summary of their own activity in this account over ``days`` days."""
    if days not in REPORT_PERIODS:
        raise ServiceError("Choose a period of 7, 30 or 90 days.", "days")
    membership = users.get_user(actor, membership_id)
    user = membership.user
    report = activity_report(actor, membership, days)
    mail.enqueue(
        "activity_report",
        user.email,
        mail.subject("activity_report", account=membership.account.name, days=days),
        account=membership.account,
        user_id=user.id,
        name=user.name,
        report=report,
    )
    audit.record(actor, "activity_report.sent", subject=user, days=days, events=report.total)
    db.session.commit()
    return report
