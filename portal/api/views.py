"""/api/v1: sign in and out with a bearer token bound to a device, and the person's overview.

The blueprint is exempt from CSRF only because it authenticates with ``Authorization: Bearer``
and never reads the session cookie (portal.session); it refuses non-JSON bodies, which is
how a cross-site form would have to send them.
"""
from functools import wraps

from flask import Blueprint
from flask import g
from flask import jsonify
from flask import request
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from portal.api.errors import error_response
from portal.api.forms import SecondFactorForm
from portal.api.forms import SessionForm
from portal.api.openapi import SPEC
from portal.extensions import csrf
from portal.extensions import limiter
from portal.services import auth
from portal.services import profile
from portal.services import second_factors
from portal.services import second_step
from portal.services.errors import ServiceError
from portal.session import current_device

bp = Blueprint("api", __name__, url_prefix="/api/v1")
SETUP_REQUIRED = second_factors.SETUP_REQUIRED
csrf.exempt(bp)


def _time(moment) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment is not None else None


def _device_json(device) -> dict:
    return {
        "id": device.id,
        "name": device.name,
        "kind": device.kind,
        "app_version": device.app_version,
        "created_at": _time(device.created_at),
        "last_seen_at": _time(device.last_seen_at),
        "expires_at": _time(device.expires_at),
    }


@bp.before_request
def require_json_body():
    """Refuse any body that is not JSON (415): text/plain and forms are CSRF's content types."""
    has_body = bool(request.content_length) or bool(request.mimetype)
    if has_body and not request.is_json:
        return error_response(415, "unsupported_media_type", "Send the body as application/json.")
    return None


def bearer_required(view):
    """Let only requests with a live device's bearer token through (401 JSON otherwise)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            if g.get("session_ended"):
                return error_response(401, "session_ended", g.session_ended)
            return error_response(
                401, "unauthorized", "Sign in first and send Authorization: Bearer <token>."
            )
        if request.method != "DELETE" and second_factors.setup_required(current_user.id):
            # An account turned the rule on after this token was issued: only logging out works.
            return error_response(403, "second_factor_setup_required", SETUP_REQUIRED)
        return view(*args, **kwargs)

    return wrapped


@bp.post("/sessions")
@limiter.limit("30 per minute")
def create_session():
    """Sign in from an app: a bearer token bound to a new device (the device limit applies)."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return error_response(400, "invalid_json", "The body must be a JSON object.")
    # Only strings count as given: a number or a list where text belongs is "missing".
    given = MultiDict({k: v for k, v in payload.items() if isinstance(v, str)})
    if "challenge_id" in payload:
        return _complete_session(SecondFactorForm(given))
    form = SessionForm(given)
    if not form.validate():
        return error_response(422, "invalid_request", "Some fields are missing or not valid.",
                              fields=form.errors)
    client = auth.Client(
        kind=form.kind.data,
        name=form.device_name.data,
        app_version=form.app_version.data,
        client_device_id=form.device_id.data,
        user_agent=request.user_agent.string,
        ip=request.remote_addr,
    )
    try:
        signed = auth.log_in(form.email.data, form.password.data, client)
    except auth.PasswordChangeRequired as error:
        return error_response(403, "password_change_required", error.message)
    except second_factors.SecondFactorRequired as pending:
        return error_response(401, "second_factor_required", pending.message,
                              challenge_id=pending.challenge)
    except second_factors.SecondFactorSetupRequired:
        return error_response(403, "second_factor_setup_required", SETUP_REQUIRED)
    except ServiceError as error:
        return error_response(401, "invalid_credentials", error.message)
    return _session_created(signed)


def _session_created(signed):
    body = {"token": signed.token, "token_type": "Bearer", "device": _device_json(signed.device)}
    return jsonify(body), 201


def _complete_session(form: SecondFactorForm):
    """The second call of a two-step sign-in: the code finishes it and creates the device."""
    if not form.validate():
        return error_response(422, "invalid_request", "Some fields are missing or not valid.",
                              fields=form.errors)
    try:
        signed = second_step.complete(form.challenge_id.data, code=form.code.data)
    except second_factors.ChallengeInvalid as error:
        return error_response(401, "invalid_challenge", error.message)
    except ServiceError as error:
        return error_response(401, "invalid_code", error.message)
    return _session_created(signed)


@bp.delete("/sessions/current")
@bearer_required
def delete_session():
    """Log out the device this token belongs to."""
    auth.sign_out(current_device())
    return "", 204


@bp.get("/me")
@bearer_required
def me():
    """Return the person's profile, accounts, groups and the taskstreams they take part in."""
    seen = profile.overview(current_user)
    user = seen.user
    return jsonify(
        id=user.id,
        name=user.name,
        email=user.email,
        phone=user.phone,
        accounts=[
            {"id": m.account_id, "name": m.account.name, "role": m.role} for m in seen.memberships
        ],
        groups=[{"id": x.id, "name": x.name, "account_id": x.account_id} for x in seen.groups],
        taskstreams=[
            {
                "id": r.taskstream.id,
                "name": r.taskstream.name,
                "account_id": r.taskstream.account_id,
                "steps": [{"id": s.id, "name": s.name, "position": s.position} for s in r.steps],
            }
            for r in seen.taskstreams
        ],
        device=_device_json(current_device()),
    )


@bp.get("/openapi.json")
def openapi():
    """Publish the OpenAPI description of this API."""
    return jsonify(SPEC)
