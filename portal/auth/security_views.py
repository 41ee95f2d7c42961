"""/account/security (second factors) and the second step of a web sign-in.

Registered on the auth blueprint (same area as sign-in): imported by portal.register_blueprints.
Passkey ceremonies talk JSON with static/passkeys.js (no inline script: CSP).
"""
from flask import flash
from flask import jsonify
from flask import redirect
from flask import request
from flask import session
from flask import url_for
from flask_login import current_user
from flask_login import login_required

from portal.auth.security_forms import ConfirmTotpForm
from portal.auth.security_forms import PlainForm
from portal.auth.security_forms import RemoveFactorForm
from portal.auth.security_forms import SecondStepForm
from portal.auth.views import PASSWORD_GATE_OPEN
from portal.auth.views import SECOND_STEP_KEY
from portal.auth.views import bp
from portal.auth.views import start_session
from portal.extensions import limiter
from portal.services import second_factors
from portal.services import second_step as step_service
from portal.services.errors import ServiceError
from portal.web import apply_error
from portal.web import client_redirect
from portal.web import render
from portal.web import safe_next

# The challenge of a passkey being added, kept in the (signed) session until it answers.
REGISTRATION_KEY = "passkey_registration"
# What a person who must add a second factor may still reach.
SETUP_GATE_OPEN = PASSWORD_GATE_OPEN | {
    "auth.security", "auth.totp_start", "auth.totp_confirm", "auth.recovery_codes",
    "auth.passkey_options", "auth.passkey_register", "auth.remove_factor", "auth.choose_account",
    "auth.second_step", "auth.second_step_passkey_options", "auth.second_step_passkey",
}


@bp.before_app_request
def require_second_factor_setup():
    """Send people whose account requires a second factor they lack to /account/security."""
    if request.endpoint in SETUP_GATE_OPEN or request.path.startswith("/api/"):
        return None
    if current_user.is_authenticated and second_factors.setup_required(current_user.id):
        return client_redirect(url_for("auth.security"))
    return None


def _json_error(message: str, status: int = 422):
    return jsonify(error=message), status


# --- the second step of a sign-in ----------------------------------------------------------


@bp.route("/login/second-factor", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def second_step():
    """After the password: a code from the app, a recovery code, or a passkey."""
    raw = session.get(SECOND_STEP_KEY)
    try:
        info = second_factors.step_info(raw)
    except second_factors.ChallengeInvalid as error:
        session.pop(SECOND_STEP_KEY, None)
        flash(error.message, "info")
        return redirect(url_for("auth.login", next=safe_next(request.args.get("next"))))
    form = SecondStepForm()
    if form.validate_on_submit():
        try:
            signed = step_service.complete(raw, code=form.code.data)
        except second_factors.ChallengeInvalid as error:
            session.pop(SECOND_STEP_KEY, None)
            flash(error.message, "info")
            return redirect(url_for("auth.login"))
        except ServiceError as error:
            apply_error(form, error)
        else:
            return start_session(signed)
    return render("auth/second_step.html", form=form, info=info,
                  status=422 if form.errors else 200)


@bp.post("/login/second-factor/passkey-options")
@limiter.limit("30 per minute")
def second_step_passkey_options():
    """WebAuthn assertion options for the person signing in (JSON)."""
    try:
        options = second_factors.passkey_sign_in_options(session.get(SECOND_STEP_KEY))
    except ServiceError as error:
        return _json_error(error.message, error.status)
    return options, 200, {"Content-Type": "application/json"}


@bp.post("/login/second-factor/passkey")
@limiter.limit("30 per minute")
def second_step_passkey():
    """Finish the sign-in with a passkey assertion (JSON in, the next address out)."""
    payload = request.get_json(silent=True)
    credential = payload.get("credential") if isinstance(payload, dict) else None
    try:
        signed = step_service.complete(session.get(SECOND_STEP_KEY),
                                      passkey=credential if isinstance(credential, dict) else {})
    except ServiceError as error:
        return _json_error(error.message, 401 if error.status == 401 else 422)
    response = start_session(signed)
    return jsonify(redirect=response.location)


# --- /account/security ---------------------------------------------------------------------


def _security_page(status: int = 200, **context):
    return render(
        "auth/security.html",
        overview=second_factors.overview(current_user),
        plain_form=PlainForm(),
        status=status,
        **context,
    )


def _expired():
    flash("The form expired; please try again.", "error")
    return redirect(url_for("auth.security"))


@bp.route("/account/security")
@login_required
def security():
    """A person's second factors: authenticator apps, passkeys, recovery codes."""
    return _security_page()


@bp.post("/account/security/totp")
@login_required
def totp_start():
    """Add an authenticator app: a new secret, shown as a QR code and as text."""
    if not PlainForm().validate_on_submit():
        return _expired()
    enrolment = second_factors.start_totp(current_user)
    return render("auth/totp_new.html", enrolment=enrolment, form=ConfirmTotpForm())


@bp.post("/account/security/totp/<int:factor_id>/confirm")
@login_required
@limiter.limit("20 per minute")
def totp_confirm(factor_id: int):
    """Confirm the authenticator app with its first code."""
    enrolment = second_factors.pending_totp(current_user, factor_id)
    form = ConfirmTotpForm()
    if form.validate_on_submit():
        try:
            factor = second_factors.confirm_totp(current_user, factor_id, form.code.data,
                                                 form.name.data)
        except ServiceError as error:
            apply_error(form, error)
        else:
            flash(f"Added {factor.name}.", "success")
            return redirect(url_for("auth.security"))
    return render("auth/totp_new.html", enrolment=enrolment, form=form, status=422)


@bp.post("/account/security/recovery-codes")
@login_required
def recovery_codes():
    """Create ten new recovery codes (the old ones stop working); shown this once."""
    if not PlainForm().validate_on_submit():
        return _expired()
    try:
        codes = second_factors.new_recovery_codes(current_user)
    except ServiceError as error:
        flash(error.message, "error")
        return redirect(url_for("auth.security"))
    return render("auth/recovery_codes.html", codes=codes)


@bp.post("/account/security/passkeys/options")
@login_required
def passkey_options():
    """WebAuthn creation options for a new passkey (JSON); the challenge stays server-side."""
    options, challenge = second_factors.passkey_registration_options(current_user)
    session[REGISTRATION_KEY] = challenge
    return options, 200, {"Content-Type": "application/json"}


@bp.post("/account/security/passkeys")
@login_required
def passkey_register():
    """Keep a new passkey once its attestation checks out (JSON in, the next address out)."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return _json_error("Send the passkey as JSON.", 400)
    name = payload.get("name") if isinstance(payload.get("name"), str) else None
    try:
        factor = second_factors.register_passkey(
            current_user, payload.get("credential"), session.pop(REGISTRATION_KEY, None), name
        )
    except ServiceError as error:
        return _json_error(error.message)
    flash(f"Added the passkey {factor.name}.", "success")
    return jsonify(redirect=url_for("auth.security"))


@bp.route("/account/security/factors/<int:factor_id>/remove", methods=["GET", "POST"])
@login_required
@limiter.limit("20 per minute", methods=["POST"])
def remove_factor(factor_id: int):
    """Remove a factor after entering the password again."""
    factor = second_factors.own_factor(current_user, factor_id)
    form = RemoveFactorForm()
    if form.validate_on_submit():
        try:
            gone = second_factors.remove_factor(current_user, factor_id, form.password.data)
        except ServiceError as error:
            apply_error(form, error)
        else:
            flash(f"Removed {gone.name}.", "success")
            return redirect(url_for("auth.security"))
    return render("auth/remove_factor.html", factor=factor, form=form,
                  status=422 if form.errors else 200)
