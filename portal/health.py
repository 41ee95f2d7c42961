"""Liveness and database check."""
import sqlalchemy as sa
from flask import Blueprint
from flask import jsonify

from portal.extensions import db

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    """Answer 200 when the app and its database respond, 503 otherwise."""
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        db.session.rollback()
        return jsonify(status="error", database=type(exc).__name__), 503
    return jsonify(status="ok", database="ok")
