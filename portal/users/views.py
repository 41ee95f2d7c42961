"""Admin → Process Setup → Participants → Users."""
from flask import Blueprint

from portal.auth.session import admin_required
from portal.auth.session import current_actor
from portal.services import users
from portal.web import render

bp = Blueprint("users", __name__, url_prefix="/admin/participants/users")


@bp.route("/")
@admin_required
def index():
    """List the account's users."""
    return render("users/index.html", "rows", page=users.list_users(current_actor()))
