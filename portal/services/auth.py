"""Sign-in on server-side device sessions: authenticate, sign in, check, sign out, reset."""
import secrets
from dataclasses import asdict
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from ua_parser import parse as parse_user_agent

from portal.extensions import db
from portal.models import Account
from portal.models import Device
from portal.models import DeviceKind
from portal.models import EndReason
from portal.models import Membership
from portal.models import TokenPurpose
from portal.models import User
from portal.models import utcnow
from portal.services import accounts
from portal.services import audit
from portal.services import mail
from portal.services import passwords
from portal.services import people
from portal.services import second_factors
from portal.services import tokens
from portal.services.errors import ServiceError

GENERIC_FAILURE = "The e-mail or password is wrong."
# Check-ins closer together than this do not rewrite last_seen (keeps the per-request check a read).
TOUCH_EVERY = timedelta(seconds=60)
RESETS_PER_HOUR = 3


@dataclass(frozen=True)
class Client:
    """What a sign-in says about the device it comes from."""

    kind: str = "web"
    name: str | None = None
    user_agent: str = ""
    app_version: str | None = None
    client_device_id: str | None = None
    ip: str | None = None


def device_name(client: Client) -> str:
    """Name a device from the app's fields or, for browsers, the user agent (ua-parser)."""
    if client.name:
        name = client.name.strip()[:120]
        return f"{name} — app {client.app_version}" if client.app_version else name
    parsed = parse_user_agent(client.user_agent or "")
    browser = parsed.user_agent
    system = parsed.os
    if browser is None:
        return "Web browser"
    text = f"{browser.family} {browser.major or ''}".strip()
    return f"{text} on {system.family}" if system is not None else text


def effective_device_limit(user: User) -> int:
    """Return the smallest device limit among the person's live accounts."""
    limit = db.session.scalar(
        sa.select(sa.func.min(Account.device_limit))
        .join(Membership, Membership.account_id == Account.id)
        .where(Membership.user_id == user.id, Membership.deleted_at.is_(None),
               Membership.invited_name.is_(None))
    )
    return limit or current_app.config["DEFAULT_DEVICE_LIMIT"]


class PasswordChangeRequired(ServiceError):
    """The password is right but no longer fits the policy: change it in the portal first."""

    status = 403


@dataclass
class SignedIn:
    """The outcome of a sign-in: the new device session and what the person must do next."""

    device: Device
    token: str
    user: User
    memberships: list[Membership]

    @property
    def account_id(self) -> int | None:
        return self.device.account_id


def _throttle_delay(failures: int) -> timedelta | None:
    cfg = current_app.config
    after = cfg["LOGIN_THROTTLE_AFTER"]
    if failures < after:
        return None
    return timedelta(minutes=min(cfg["LOGIN_THROTTLE_MAX_MINUTES"], 2 ** (failures - after)))


def count_failure(user_id: int | None, now) -> None:
    """Add one failed sign-in (in SQL, so parallel attempts each add exactly one) and throttle.

    The count starts over when the last failure is older than LOGIN_THROTTLE_RESET_HOURS; a
    running throttle is not extended, so an attacker cannot keep a person locked out for good.
    An unknown address (``user_id`` None) does the same work: the same UPDATE (it matches no
    row), the same read and a "login.failed" event without a person, so the time a failed
    sign-in takes does not tell whether the address exists (tests/bench/bench_login_timing.py).
    """
    stale = now - timedelta(hours=current_app.config["LOGIN_THROTTLE_RESET_HOURS"])
    target = user_id if user_id is not None else 0  # 0 names nobody: ids start at 1
    counted = db.session.execute(
        sa.update(User)
        .where(User.id == target)
        .values(
            failed_logins=sa.case(
                (sa.or_(User.failed_login_at.is_(None), User.failed_login_at < stale), 1),
                else_=User.failed_logins + 1,
            ),
            failed_login_at=now,
        )
        .returning(User.failed_logins, User.throttled_until),
        execution_options={"synchronize_session": False},
    ).first()
    user = db.session.get(User, target)
    if counted is not None:
        failures, throttled_until = counted
        delay = _throttle_delay(failures)
        if delay is not None and (throttled_until is None or throttled_until <= now):
            db.session.execute(
                sa.update(User).where(User.id == user_id).values(throttled_until=now + delay),
                execution_options={"synchronize_session": False},
            )
            audit.record_in_accounts("login.throttled", subject=user, failures=failures,
                                     minutes=int(delay.total_seconds() // 60))
    audit.record_in_accounts("login.failed", subject=user)
    db.session.commit()


def authenticate(email: str, password: str) -> User:
    """Return the person for these credentials or raise the one generic error.

    Unknown, deleted, invited-only and throttled people all cost one argon2 verification and
    get the same message, so no response tells whether an e-mail exists. Every wrong password
    counts against the person, whichever path (web or API) it came through.
    """
    try:
        key = people.normalise_email(email)
    except ServiceError:
        key = None
    found = people.find_person(key) if key else None
    user_id = found.id if found is not None else None
    stored = found.password_hash if found is not None else None
    # End the read before hashing: argon2 takes tens of milliseconds, and on SQLite an open
    # transaction holds the write lock (BEGIN IMMEDIATE) that every other request waits for.
    db.session.rollback()
    ok, rehashed = passwords.verify_hash(stored, password or "")
    now = utcnow()
    if not ok:
        count_failure(user_id, now)  # known or not: the same work, so the same time
        raise ServiceError(GENERIC_FAILURE)
    user = db.session.get(User, user_id)
    throttled = user.throttled_until is not None and user.throttled_until > now
    live = db.session.scalar(
        sa.select(sa.func.count(Membership.id)).where(
            Membership.user_id == user.id, Membership.deleted_at.is_(None),
            Membership.invited_name.is_(None),
        )
    )
    if throttled or not live:
        db.session.rollback()
        raise ServiceError(GENERIC_FAILURE)
    # Core updates: sign-in bookkeeping must not bump the optimistic-lock version of the person.
    changes = {}
    # With a second factor the count goes on until that step is passed too (services.second_step):
    # a right password must not wipe out the wrong codes guessed after it.
    if (user.failed_logins or user.throttled_until is not None) and not second_factors.has_factor(
        user.id
    ):
        changes.update(failed_logins=0, failed_login_at=None, throttled_until=None)
    if rehashed is not None:
        changes.update(password_hash=rehashed)
    if changes:
        db.session.execute(
            sa.update(User).where(User.id == user.id).values(**changes),
            execution_options={"synchronize_session": False},
        )
        db.session.commit()  # keeps a reset counter or a rehashed password
    return user


def log_in(email: str, password: str, client: Client) -> SignedIn:
    """Check the credentials and open a device session; the one sign-in of web and API.

    A password that no longer fits the person's (possibly stricter) policy is flagged here,
    the only moment it is known: the web then asks for a new one before anything else, and
    an app is refused until that is done.
    """
    user = authenticate(email, password)
    if not user.must_change_password and not passwords.fits_policy(user, password):
        db.session.execute(
            sa.update(User).where(User.id == user.id).values(must_change_password=True),
            execution_options={"synchronize_session": False},
        )
        db.session.refresh(user)
    if user.must_change_password and client.kind != "web":
        # Keep the flag (and the reset failure count): the refusal is an outcome, not an error.
        db.session.commit()
        raise PasswordChangeRequired(
            "Your organisation's password policy changed. Sign in to the portal in a browser "
            "and choose a new password, then sign in here again."
        )
    if second_factors.has_factor(user.id):
        # The device is created only after the second step (services.second_step).
        raise second_factors.SecondFactorRequired(
            second_factors.start_challenge(user, asdict(client))
        )
    if client.kind != "web" and second_factors.setup_required(user.id):
        db.session.commit()
        raise second_factors.SecondFactorSetupRequired(second_factors.SETUP_REQUIRED)
    memberships = accounts.live_memberships(user)
    only = memberships[0].account_id if len(memberships) == 1 else None
    device, raw = sign_in(user, client, account_id=only)
    return SignedIn(device=device, token=raw, user=user, memberships=memberships)


def sign_in(user: User, client: Client, account_id: int | None = None) -> tuple[Device, str]:
    """Create a device session, ending the first signed-in ones beyond the limit.

    The person's row is locked first, so two racing sign-ins take turns and never leave more
    live devices than the limit (SQLite serialises writers with BEGIN IMMEDIATE; PostgreSQL
    waits on the row lock, and the device read after it sees the other sign-in's commit).
    """
    db.session.execute(sa.select(User.id).where(User.id == user.id).with_for_update())
    now = utcnow()
    limit = effective_device_limit(user)
    live = list(
        db.session.scalars(
            sa.select(Device)
            .where(Device.user_id == user.id, Device.revoked_at.is_(None))
            # The seed: "once the number is exceeded, the user is logged out of the first
            # device": the one signed in earliest goes, however recently it was used.
            .order_by(Device.created_at, Device.id)
        )
    )
    if client.client_device_id:
        # The same app install signing in again replaces its old session rather than taking
        # another place (and logging out some other device).
        for old in [d for d in live if d.client_device_id == client.client_device_id]:
            old.revoked_at = now
            old.revoked_reason = EndReason.LOGOUT
            live.remove(old)
    for old in live[: max(0, len(live) - limit + 1)]:
        old.revoked_at = now
        old.revoked_reason = EndReason.DEVICE_LIMIT
        audit.record(None, "device.limit_logout", subject=user, actor_user=user, device=old.name)
    # Ended devices are listed for a while with how they ended; older ones go here, per person.
    history = timedelta(days=current_app.config["DEVICE_HISTORY_DAYS"])
    db.session.execute(
        sa.delete(Device).where(Device.user_id == user.id, Device.revoked_at < now - history),
        execution_options={"synchronize_session": False},
    )
    raw = secrets.token_urlsafe(32)
    cfg = current_app.config
    lifetime = (
        timedelta(hours=cfg["SESSION_MAX_HOURS"])
        if client.kind == "web"
        else timedelta(days=cfg["API_SESSION_MAX_DAYS"])
    )
    device = Device(
        user_id=user.id,
        account_id=account_id,
        token_hash=tokens.digest(raw),
        kind=client.kind,
        name=device_name(client),
        app_version=client.app_version,
        client_device_id=client.client_device_id,
        ip=client.ip,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
    )
    db.session.add(device)
    db.session.execute(
        sa.update(User).where(User.id == user.id).values(last_seen_at=now),
        execution_options={"synchronize_session": False},
    )
    _seen_in_account(user.id, account_id, now)
    db.session.flush()
    audit.record(None, "login", subject=user, actor_user=user, account_id=account_id,
                 device=device.name, kind=client.kind)
    db.session.commit()
    return device, raw


def load_session(raw: str | None) -> Device | None:
    """Return the live device for a session token, or None (revoked, expired, idle, unknown).

    One indexed read per request; last_seen is written at most once a minute.
    """
    if not raw or len(raw) > 100:
        return None
    device = db.session.scalar(
        sa.select(Device).where(Device.token_hash == tokens.digest(raw), Device.revoked_at.is_(None))
    )
    if device is None:
        return None
    now = utcnow()
    idle = timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
    if device.expires_at <= now or (device.kind == DeviceKind.WEB and device.last_seen_at + idle <= now):
        device.revoked_at = now
        device.revoked_reason = EndReason.EXPIRED
        db.session.commit()
        return None
    if now - device.last_seen_at >= TOUCH_EVERY:
        device.last_seen_at = now
        db.session.execute(sa.update(User).where(User.id == device.user_id).values(last_seen_at=now))
        _seen_in_account(device.user_id, device.account_id, now)
        db.session.commit()
    return device


def _seen_in_account(user_id: int, account_id: int | None, now) -> None:
    """Record activity in one account: its "last seen" shows only what happened in it."""
    if account_id is not None:
        db.session.execute(
            sa.update(Membership)
            .where(Membership.user_id == user_id, Membership.account_id == account_id)
            .values(sort_last_seen=now),
            execution_options={"synchronize_session": False},
        )


def ended_reason(raw: str | None) -> str | None:
    """Tell why a session token stopped working (shown once on its next request)."""
    if not raw or len(raw) > 100:
        return None
    row = db.session.execute(
        sa.select(Device.revoked_reason, User.name)
        .outerjoin(User, User.id == Device.revoked_by_id)
        .where(Device.token_hash == tokens.digest(raw))
    ).first()
    if row is None or row.revoked_reason is None:
        return None
    if row.revoked_reason == EndReason.ADMIN:
        return f"{row.name or 'An administrator'} logged this device out."
    if row.revoked_reason == EndReason.LOGOUT and row.name:
        # Logged out from another of the person's devices (signing out here needs no word).
        return "You logged this device out from another device."
    return {
        "device_limit": "You were logged out because you signed in on another device and your "
        "device limit was reached.",
        "password_changed": "You were logged out because the password was changed.",
        "expired": "Your session expired. Please sign in again.",
        "deleted": "Your access was removed.",
    }.get(row.revoked_reason)


def sign_out(device: Device) -> None:
    """End this device's session."""
    device.revoked_at = utcnow()
    device.revoked_reason = EndReason.LOGOUT
    audit.record(None, "logout", subject=None, actor_user=db.session.get(User, device.user_id),
                 account_id=device.account_id, device=device.name)
    db.session.commit()


def revoke_all(user: User | sa.Select, reason: str, *, except_device_id: int | None = None,
               by: User | None = None) -> int:
    """End every live device of a person, or of everyone a SELECT of user ids names; no commit."""
    owner = Device.user_id == user.id if isinstance(user, User) else Device.user_id.in_(user)
    stmt = sa.update(Device).where(owner, Device.revoked_at.is_(None))
    if except_device_id is not None:
        stmt = stmt.where(Device.id != except_device_id)
    result = db.session.execute(
        stmt.values(revoked_at=utcnow(), revoked_reason=reason, revoked_by_id=by.id if by else None),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount or 0


def choose_account(device: Device, account_id) -> Membership:
    """Switch the account this session acts in (only to one the person belongs to)."""
    try:
        account_id = int(account_id)
    except (TypeError, ValueError):
        account_id = 0
    membership = db.session.scalar(
        sa.select(Membership).where(
            Membership.user_id == device.user_id,
            Membership.account_id == account_id,
            Membership.deleted_at.is_(None),
            Membership.invite_state == "active",  # an invitation opens it once accepted
        )
    )
    if membership is None:
        raise ServiceError("You are not a member of that account.", "account")
    device.account_id = membership.account_id
    _seen_in_account(device.user_id, membership.account_id, utcnow())
    # The sign-in of a person in several accounts names none; this names the one chosen.
    audit.record(None, "account.chosen", subject=membership.user, actor_user=membership.user,
                 account_id=membership.account_id, device=device.name)
    db.session.commit()
    db.session.refresh(membership)
    return membership


def request_password_reset(email: str) -> None:
    """Mail a reset link when the person exists; otherwise do nothing, visibly the same."""
    try:
        key = people.normalise_email(email)
    except ServiceError:
        return
    user = people.find_person(key)
    if user is None:
        return
    has_live = db.session.scalar(
        sa.select(sa.func.count(Membership.id)).where(
            Membership.user_id == user.id, Membership.deleted_at.is_(None)
        )
    )
    from portal.models import ActionToken

    recent = db.session.scalar(
        sa.select(sa.func.count(ActionToken.id)).where(
            ActionToken.user_id == user.id,
            ActionToken.purpose == TokenPurpose.RESET,
            ActionToken.created_at > utcnow() - timedelta(hours=1),
        )
    )
    if not has_live or recent >= RESETS_PER_HOUR:
        return
    mail_reset_link(user)
    audit.record(None, "password.reset_requested", subject=user, actor_user=user)
    db.session.commit()


def mail_reset_link(user: User, account: Account | None = None) -> None:
    """Issue a reset link (earlier ones stop working) and queue its e-mail; does not commit.

    With ``account``, the e-mail says an administrator of that account sent the link.
    """
    minutes = current_app.config["RESET_VALID_MINUTES"]
    raw = tokens.issue(user, TokenPurpose.RESET, timedelta(minutes=minutes))
    mail.enqueue(
        "reset_password",
        user.email,
        mail.subject("reset_password"),
        account=account,
        user_id=user.id,
        name=user.name,
        sealed_link=mail.sealed("/reset-password/", raw),
        valid_minutes=minutes,
        requested_by=account.name if account is not None else None,
    )


def reset_link_user(raw: str) -> User:
    """Return the person a live reset link is for, or raise LinkInvalid."""
    return db.session.get(User, tokens.find(raw, TokenPurpose.RESET).user_id)


def notify_password_changed(user: User, kept_device: str | None = None) -> None:
    """Queue the "your password was changed" mail (naming the device still signed in, if any)."""
    mail.enqueue(
        "password_changed",
        user.email,
        mail.subject("password_changed"),
        user_id=user.id,
        name=user.name,
        url=mail.link("/forgot-password"),
        kept_device=kept_device,
    )


def reset_password(raw: str, password: str) -> User:
    """Set a new password from a reset link; every session of the person ends."""
    token = tokens.find(raw, TokenPurpose.RESET)
    user = db.session.get(User, token.user_id)
    passwords.check_new_password(user, password)
    passwords.store_password(user, password)
    tokens.spend(token)
    revoke_all(user, EndReason.PASSWORD_CHANGED)
    notify_password_changed(user)
    audit.record(None, "password.reset", subject=user, actor_user=user)
    db.session.commit()
    return user
