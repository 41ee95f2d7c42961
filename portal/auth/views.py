"""Sign-in pages (login, logout, choose account, forgot/reset, invitation) and /account."""
from flask import Blueprint
from flask import flash
from flask import g
from flask import redirect
from flask import request
from flask import session
from flask import url_for
from flask_login import current_user
from flask_login import login_required

from portal.auth.forms import ChangePasswordForm
from portal.auth.forms import ChooseAccountForm
from portal.auth.forms import JoinForm
from portal.auth.forms import ForgotPasswordForm
from portal.auth.forms import LoginForm
from portal.auth.forms import LogoutForm
from portal.auth.forms import NewPasswordForm
from portal.auth.forms import ProfileForm
from portal.extensions import limiter
from portal.extensions import login_manager
from portal.services import accounts
from portal.services import auth as auth_service
from portal.services import invitations
from portal.services import passwords
from portal.services import profile
from portal.services import second_factors
from portal.services.errors import ServiceError
from portal.services.tokens import LinkInvalid
from portal.session import SESSION_KEY
from portal.session import current_actor
from portal.session import current_device
from portal.web import apply_error
from portal.web import client_redirect
from portal.web import is_fragment_request
from portal.web import render
from portal.web import safe_next

bp = Blueprint("auth", __name__)
# The id of a sign-in waiting for its second factor (portal.auth.security_views).
SECOND_STEP_KEY = "second_step"


# What a person whose password must change may still reach.
PASSWORD_GATE_OPEN = {
    "auth.change_password", "auth.logout", "auth.login", "auth.forgot_password",
    "auth.reset_password", "auth.accept_invite", "static", "health.healthz",
}


def _home() -> str:
    actor = current_actor()
    if actor is not None and actor.is_admin:
        return url_for("users.index")
    return url_for("auth.account_home")


@login_manager.unauthorized_handler
def unauthorized():
    """Send anonymous people to sign-in (htmx: a full-page redirect), saying why if known."""
    if g.get("session_ended"):
        flash(g.session_ended, "info")
    target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    return client_redirect(target, status=401)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def login():
    """Sign in with e-mail and password; pre-fill the e-mail from ?login_hint=."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_home())
    if g.get("session_ended"):
        flash(g.session_ended, "info")
    form = LoginForm()
    if request.method == "GET" and request.args.get("login_hint"):
        form.email.data = request.args["login_hint"][:254]
    if form.validate_on_submit():
        client = auth_service.Client(
            kind="web", user_agent=request.user_agent.string, ip=request.remote_addr
        )
        try:
            signed = auth_service.log_in(form.email.data, form.password.data, client)
        except second_factors.SecondFactorRequired as pending:
            # Nothing from before carries over; the cookie holds only the step's id until then.
            session.clear()
            session[SECOND_STEP_KEY] = pending.challenge
            return redirect(url_for("auth.second_step", next=safe_next(request.args.get("next"))))
        except ServiceError as error:
            apply_error(form, error)
        else:
            return start_session(signed)
    return render("auth/login.html", form=form, status=422 if form.errors else 200)


def start_session(signed: auth_service.SignedIn):
    """Put a new device session in a new cookie and send the person on (web sign-in's end)."""
    session.clear()  # a new cookie for a new session: nothing from before sign-in carries over
    session[SESSION_KEY] = signed.token
    target = safe_next(request.args.get("next"))
    if signed.user.must_change_password:
        return redirect(url_for("auth.change_password", next=target))
    if signed.account_id is None:
        return redirect(url_for("auth.choose_account", next=target))
    return redirect(target or _after_login(signed.memberships[0]))


@bp.before_app_request
def require_password_change():
    """Send people whose password no longer fits the policy to change it before anything else."""
    if request.endpoint in PASSWORD_GATE_OPEN or request.path.startswith("/api/"):
        return None
    if current_user.is_authenticated and current_user.must_change_password:
        target = url_for("auth.change_password")
        if is_fragment_request():
            return client_redirect(target)
        return redirect(target)
    return None


def _after_login(membership) -> str:
    return url_for("users.index") if membership.is_admin else url_for("auth.account_home")


@bp.route("/choose-account", methods=["GET", "POST"])
def choose_account():
    """Pick the account to act in, for people who belong to several."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    memberships = accounts.live_memberships(current_user)
    form = ChooseAccountForm()
    form.account.choices = [
        (m.account_id, f"{m.account.name} ({m.role})") for m in memberships
    ]
    if request.method == "GET" and current_device().account_id:
        form.account.data = current_device().account_id
    if form.validate_on_submit():
        try:
            membership = auth_service.choose_account(current_device(), form.account.data)
        except ServiceError as error:
            apply_error(form, error)
        else:
            return redirect(safe_next(request.args.get("next")) or _after_login(membership))
    return render("auth/choose_account.html", form=form, several=len(memberships) > 1,
                  status=422 if form.errors else 200)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """Sign out: GET asks for confirmation (no state change on GET), POST ends the session."""
    form = LogoutForm()
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if form.validate_on_submit():
        auth_service.sign_out(current_device())
        session.clear()
        flash("You are signed out.", "info")
        return redirect(url_for("auth.login"))
    return render("auth/logout.html", form=form)


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def forgot_password():
    """Ask for a reset link; the answer is the same whether or not the e-mail exists."""
    form = ForgotPasswordForm()
    if request.method == "GET" and request.args.get("login_hint"):
        form.email.data = request.args["login_hint"][:254]
    if form.validate_on_submit():
        auth_service.request_password_reset(form.email.data)
        flash(
            "If that e-mail belongs to a user, a link to reset the password is on its way.", "info"
        )
        return redirect(url_for("auth.login"))
    return render("auth/forgot_password.html", form=form, status=422 if form.errors else 200)


def _link_invalid(error: LinkInvalid):
    return render("auth/link_invalid.html", message=error.message, status=410)


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def reset_password(token: str):
    """Choose a new password from a reset link (single use; ends every session)."""
    form = NewPasswordForm()
    try:
        user = auth_service.reset_link_user(token)
    except LinkInvalid as error:
        return _link_invalid(error)
    if form.validate_on_submit():
        try:
            auth_service.reset_password(token, form.password.data)
        except LinkInvalid as error:
            return _link_invalid(error)
        except ServiceError as error:
            apply_error(form, error)
        else:
            flash("Your password is changed. Sign in with it.", "success")
            return redirect(url_for("auth.login", login_hint=user.email))
    return render(
        "auth/reset_password.html",
        form=form,
        policy=passwords.effective_policy(user),
        status=422 if form.errors else 200,
    )


@bp.route("/invite/<token>", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def accept_invite(token: str):
    """Accept an invitation: choose a password, or give the one the person already has."""
    try:
        membership, needs_password = invitations.invitation_details(token)
    except LinkInvalid as error:
        return _link_invalid(error)
    form = NewPasswordForm() if needs_password else JoinForm()
    if form.validate_on_submit():
        try:
            invitations.accept_invitation(token, form.password.data)
        except LinkInvalid as error:
            return _link_invalid(error)
        except ServiceError as error:
            apply_error(form, error)
        else:
            flash(f"Welcome to {membership.account.name}. Sign in to continue.", "success")
            return redirect(url_for("auth.login", login_hint=membership.user.email))
    return render(
        "auth/accept_invite.html",
        form=form,
        membership=membership,
        needs_password=needs_password,
        policy=passwords.effective_policy(membership.user),
        status=422 if form.errors else 200,
    )


def _account_page(profile_form: ProfileForm | None = None, status: int = 200):
    page = profile.own_page(current_device())
    return render(
        "auth/account.html",
        "profile",
        profile_form=profile_form or ProfileForm(obj=current_user),
        page=page,
        listing=page.devices,
        status=status,
    )


@bp.route("/account")
@login_required
def account_home():
    """A person's own page: profile, password, their groups, taskstreams and steps, devices."""
    return _account_page()


@bp.route("/account/profile", methods=["POST"])
@login_required
def update_profile():
    """Change one's own name and phone number."""
    form = ProfileForm()
    if form.validate_on_submit():
        try:
            profile.update_own_profile(current_device(), name=form.name.data, phone=form.phone.data)
        except ServiceError as error:
            apply_error(form, error)
        else:
            flash("Your profile is saved.", "success")
            if not is_fragment_request():
                return redirect(url_for("auth.account_home"))
            return _account_page(ProfileForm(obj=current_user))
    return _account_page(form, status=422)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change one's own password (the current one is required); other devices are logged out."""
    form = ChangePasswordForm()
    forced = current_user.must_change_password
    if form.validate_on_submit():
        try:
            ended = profile.change_password(
                current_device(),
                current_password=form.current_password.data,
                new_password=form.password.data,
            )
        except ServiceError as error:
            apply_error(form, error)
        else:
            others = {0: "", 1: " 1 other device was logged out."}.get(
                ended, f" {ended} other devices were logged out."
            )
            flash(f"Your password is changed.{others}", "success")
            target = safe_next(request.args.get("next"))
            if current_device().account_id is None:
                return redirect(url_for("auth.choose_account", next=target))
            return redirect(target or (_home() if forced else url_for("auth.account_home")))
    return render(
        "auth/change_password.html",
        form=form,
        forced=forced,
        policy=passwords.effective_policy(current_user),
        status=422 if form.errors else 200,
    )
