"""Device-backed sessions for Flask-Login, the acting membership, and access decorators."""
from functools import wraps

from flask import abort
from flask import g
from flask import has_request_context
from flask import redirect
from flask import request
from flask import session
from flask import url_for
from flask_login import current_user

from portal.extensions import login_manager
from portal.models import Membership
from portal.services import accounts
from portal.services import auth as auth_service

SESSION_KEY = "device_token"


def bearer_token() -> str | None:
    """Return the bearer token of an API request, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token else None


@login_manager.request_loader
def load_user_from_request(req):
    """Authenticate by the device token in the session cookie (or the bearer token for the API)."""
    api = req.path.startswith("/api/")
    # The API never reads the cookie: that is what makes its CSRF exemption safe.
    raw = bearer_token() if api else session.get(SESSION_KEY)
    device = auth_service.load_session(raw)
    if device is None:
        if raw:
            g.session_ended = auth_service.ended_reason(raw)
            if not api:
                session.pop(SESSION_KEY, None)
        return None
    g.device = device
    return device.user


def current_device():
    """Return the device of this request's session (None when anonymous)."""
    if not has_request_context() or not current_user.is_authenticated:
        return None
    return g.get("device")


def current_actor() -> Membership | None:
    """Return the live membership the session acts as, in the account chosen at sign-in."""
    if not has_request_context():
        return None
    if "actor" not in g:
        device = current_device()
        g.actor = accounts.acting_membership(device) if device is not None else None
    return g.actor


def admin_required(view):
    """Let only admins of the acting account through: anonymous → sign-in, members → 403."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        actor = current_actor()
        if actor is None:
            return redirect(url_for("auth.choose_account", next=request.full_path))
        if not actor.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped
