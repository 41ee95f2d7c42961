"""Settings: DEFAULTS, then ``PORTAL_*`` environment variables, then the test config.

Each key below is documented on one line; the README's environment table is built from them.
Set any of them as ``PORTAL_<KEY>`` (values are parsed as JSON when they can be).
"""
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

DEFAULTS: dict[str, Any] = {
    # Signs session cookies and CSRF tokens; generated once into the instance folder when unset.
    "SECRET_KEY": None,
    # SQLAlchemy URL; unset means the embedded SQLite file instance/portal.db.
    "DATABASE_URL": None,
    # SQLite only: seconds a request waits for the one write lock before it answers 503.
    "SQLITE_BUSY_SECONDS": 30,
    # Origin used for every link in e-mails (never the request's Host header).
    "BASE_URL": "http://127.0.0.1:5000",
    # SMTP host; unset keeps mail in the outbox, readable by admins at /admin/outbox.
    "MAIL_SERVER": None,
    # SMTP port.
    "MAIL_PORT": 25,
    # SMTP STARTTLS.
    "MAIL_USE_TLS": False,
    # SMTP implicit TLS.
    "MAIL_USE_SSL": False,
    # SMTP user name.
    "MAIL_USERNAME": None,
    # SMTP password.
    "MAIL_PASSWORD": None,
    # Envelope and From address of every e-mail.
    "MAIL_DEFAULT_SENDER": "portal@localhost",
    # Seconds before a silent SMTP server is given up on (the delivery is retried later).
    "SMTP_TIMEOUT": 10,
    # Hours a temporarily failing e-mail is retried (with exponential back-off) before it fails.
    "OUTBOX_RETRY_HOURS": 24,
    # Seconds a background claim (a job, an e-mail being sent) lives unless its worker renews it
    # (every third of it); a dead worker's work is taken over after at most this long.
    "JOB_LEASE_SECONDS": 45,
    # Bulk actions on more users than this run as a background job instead of in the request.
    "BULK_BACKGROUND_ROWS": 5000,
    # Days a deleted membership can be restored before `flask purge` removes it.
    "RETENTION_DAYS": 30,
    # argon2id time cost (OWASP minimum 2).
    "ARGON2_TIME_COST": 2,
    # argon2id memory in KiB (OWASP minimum 19456).
    "ARGON2_MEMORY_COST": 19456,
    # argon2id lanes.
    "ARGON2_PARALLELISM": 1,
    # Minutes a password-reset link stays valid.
    "RESET_VALID_MINUTES": 60,
    # Minutes after an invitation before Resend Invite sends that person another one.
    "INVITE_RESEND_MINUTES": 5,
    # Minutes refused invitations are gathered into one notice to the admin who invited.
    "REFUSAL_DIGEST_MINUTES": 5,
    # Refused requests for another account's ids written to the audit trail per actor and minute.
    "AUDIT_REFUSALS_PER_MINUTE": 10,
    # Minutes of inactivity after which a browser session ends.
    "SESSION_IDLE_MINUTES": 30,
    # Hours after sign-in at which a browser session ends whatever the activity.
    "SESSION_MAX_HOURS": 12,
    # Days an app (bearer token) session lives at most.
    "API_SESSION_MAX_DAYS": 30,
    # Failed sign-ins on one person before sign-in is throttled (1 min, doubling per failure).
    "LOGIN_THROTTLE_AFTER": 10,
    # Longest throttle wait in minutes.
    "LOGIN_THROTTLE_MAX_MINUTES": 15,
    # Hours after the last failed sign-in at which a person's failure count starts over.
    "LOGIN_THROTTLE_RESET_HOURS": 12,
    # Days an ended device stays in the device lists (with how it ended).
    "DEVICE_HISTORY_DAYS": 30,
    # Largest accepted upload in bytes (CSV import); larger requests get 413.
    "MAX_CONTENT_LENGTH": 10 * 1024 * 1024,
    # Special-use e-mail domains accepted (email-validator refuses them all): .local is common
    # on Active Directory intranets. A JSON list or comma-separated names; [] accepts none.
    "EMAIL_SPECIAL_USE_DOMAINS": ["local"],
    # Most data rows one CSV import may hold.
    "IMPORT_MAX_ROWS": 100_000,
    # Hours an uploaded CSV waits for its import before it is discarded.
    "IMPORT_KEEP_HOURS": 24,
    # Storage for per-address rate limits; use redis:// when several processes serve.
    "RATELIMIT_STORAGE_URI": "memory://",
    # Device limit given to new accounts (operators change it per account with the CLI); one more
    # sign-in logs out the device signed in first.
    "DEFAULT_DEVICE_LIMIT": 3,
    # Send Strict-Transport-Security and Secure cookies (turn on behind HTTPS).
    "HTTPS": False,
}


def load(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Apply the three layers and derive what Flask and its extensions expect."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("PORTAL")
    if test_config:
        app.config.from_mapping(test_config)
    cfg = app.config
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not cfg["SECRET_KEY"]:
        key_file = instance / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        cfg["SECRET_KEY"] = key_file.read_text().strip()
    if not cfg["DATABASE_URL"]:
        cfg["DATABASE_URL"] = f"sqlite:///{instance / 'portal.db'}"
    cfg["SQLALCHEMY_DATABASE_URI"] = cfg["DATABASE_URL"]
    domains = cfg["EMAIL_SPECIAL_USE_DOMAINS"]
    if isinstance(domains, str):
        domains = domains.split(",")
    cfg["EMAIL_SPECIAL_USE_DOMAINS"] = tuple(
        d.strip().strip(".").lower() for d in domains or () if d.strip())
    cfg.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["SESSION_COOKIE_SAMESITE"] = "Lax"
    cfg["SESSION_COOKIE_SECURE"] = bool(cfg["HTTPS"])
    if cfg["HTTPS"]:
        cfg["SESSION_COOKIE_NAME"] = "__Host-session"
    cfg["REMEMBER_COOKIE_DURATION"] = 0
    cfg["WTF_CSRF_SSL_STRICT"] = bool(cfg["HTTPS"])
    cfg["MAIL_SUPPRESS_SEND"] = False
    cfg["RATELIMIT_HEADERS_ENABLED"] = False
