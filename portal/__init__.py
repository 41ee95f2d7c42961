"""Participants Portal: the application factory."""
from typing import Any

from flask import Flask
from flask import abort
from flask import make_response
from flask import request
import sqlalchemy as sa
import werkzeug.exceptions
from flask_wtf.csrf import CSRFError

from portal import config
from portal.extensions import bind_sqlite_events
from portal.extensions import csrf
from portal.extensions import db
from portal.extensions import limiter
from portal.extensions import login_manager
from portal.extensions import mail
from portal.extensions import migrate
from portal.extensions import sqlite_read_first

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: config → extensions → blueprints → CLI → error handlers."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    config.load(app, test_config)
    configure_extensions(app)
    register_blueprints(app)
    register_cli(app)
    register_handlers(app)
    return app


def configure_extensions(app: Flask) -> None:
    """Bind the unbound extensions to this app."""
    db.init_app(app)
    with app.app_context():
        bind_sqlite_events(db.engine, float(app.config["SQLITE_BUSY_SECONDS"]))

    # Before every other hook (the blueprints' gates read the session's device): on SQLite a
    # GET reads beside the writers and queues for the write lock only if it comes to write.
    @app.before_request
    def read_without_the_write_lock():
        sqlite_read_first.set(request.method in ("GET", "HEAD", "OPTIONS"))

    @app.teardown_request
    def forget_read_first(_exc):
        sqlite_read_first.set(False)

    migrate.init_app(app, db, render_as_batch=True)
    login_manager.init_app(app)
    login_manager.session_protection = None  # sessions are checked against Device rows instead
    mail.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    from portal import session  # noqa: F401  (registers the Flask-Login loader)


def register_blueprints(app: Flask) -> None:
    """Register every area's blueprint."""
    from portal.api.views import bp as api_bp
    from portal.audit_log.views import bp as audit_log_bp
    from portal.auth import security_views  # noqa: F401  (adds /account/security to auth_bp)
    from portal.auth.views import bp as auth_bp
    from portal.devices.views import bp as devices_bp
    from portal.groups.views import bp as groups_bp
    from portal.health import bp as health_bp
    from portal.outbox.views import bp as outbox_bp
    from portal.provisioning.views import bp as provisioning_bp
    from portal.saved_views.views import bp as saved_views_bp
    from portal.scim.views import bp as scim_bp
    from portal.settings.views import bp as settings_bp
    from portal.taskstreams.views import bp as taskstreams_bp
    from portal.users.views import bp as users_bp

    for blueprint in (api_bp, audit_log_bp, auth_bp, devices_bp, groups_bp, health_bp, outbox_bp,
                      provisioning_bp, saved_views_bp, scim_bp, settings_bp, taskstreams_bp,
                      users_bp):
        app.register_blueprint(blueprint)


def register_cli(app: Flask) -> None:
    """Add the operator commands to ``flask``."""
    from portal import cli

    cli.register(app)


def register_handlers(app: Flask) -> None:
    """Error pages, security headers and template globals."""
    from portal.session import current_actor
    from portal.services import audit
    from portal.services.errors import NotFound
    from portal.services.errors import OutOfScope
    from portal.services.errors import ServiceError
    from portal.web import record_refusal
    from portal.web import render

    @app.context_processor
    def inject_actor():
        return {"actor": current_actor()}

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(410)
    @app.errorhandler(413)
    @app.errorhandler(429)
    @app.errorhandler(503)
    def http_error(error):
        if request.path.startswith("/api/"):
            from portal.api.errors import http_error_response

            return http_error_response(error)
        if request.path.startswith("/scim/"):
            from portal.scim.views import http_error_response as scim_error_response

            return scim_error_response(error)
        return render("errors/error.html", "main", error=error, status=error.code)

    @app.errorhandler(ServiceError)
    def service_error(error):
        # A rule's refusal that no view turned into a form error: NotFound is the plain 404.
        if isinstance(error, OutOfScope):
            record_refusal(error)  # an id outside the account: one audit event (rate-limited)
        if isinstance(error, NotFound):
            return http_error(werkzeug.exceptions.NotFound())
        return render("errors/error.html", "main", error=error, status=error.status)

    @app.errorhandler(sa.exc.OperationalError)
    def database_busy(error):
        # SQLite's one write lock stayed taken past the busy timeout (a long import or purge
        # beside a burst of writers): the request changed nothing, so "try again shortly" is
        # the true answer, not a 500. Any other database failure stays a server error.
        if "database is locked" not in str(error.orig):
            raise error
        db.session.rollback()
        response = make_response(http_error(werkzeug.exceptions.ServiceUnavailable()))
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render("errors/error.html", "main", error=error, status=400)

    @app.before_request
    def refuse_cross_site_writes():
        # Defence in depth beside CSRF tokens (OWASP): browsers say where a request came from.
        if request.method in ("GET", "HEAD", "OPTIONS") or request.path.startswith(("/api/",
                                                                                    "/scim/")):
            return None
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            abort(403)
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin.rstrip("/") != request.host_url.rstrip("/"):
            abort(403)
        return None

    @app.before_request
    def hand_in_client_address():
        # Services take the client address as a value; they never read the request.
        audit.client_address.set(request.remote_addr)

    @app.teardown_request
    def forget_client_address(_exc):
        audit.client_address.set(None)

    @app.teardown_request
    def rollback_uncommitted(_exc):
        # A failed request leaves the database as it was: nothing half-written survives.
        if db.session.is_active:
            db.session.rollback()

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = (
            "no-referrer"
            if request.path.startswith(("/invite/", "/reset-password/"))
            else "same-origin"
        )
        if app.config["HTTPS"]:
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if not request.path.startswith("/static/"):
            headers["Cache-Control"] = "no-store"
        return response
