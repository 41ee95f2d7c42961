"""User Details › Reset second factors, confirmed on its own page.

A nested blueprint of ``users`` (endpoints ``users.second_factors.*``).
"""
from flask import Blueprint
from flask import flash
from flask import redirect
from flask import url_for

from portal.forms import ActionForm
from portal.services import second_factor_admin
from portal.services import users
from portal.services.errors import ServiceError
from portal.session import admin_required
from portal.session import current_actor
from portal.web import render

bp = Blueprint("second_factors", __name__)


@bp.route("/<int:membership_id>/second-factors/reset", methods=["GET", "POST"])
@admin_required
def reset_second_factors(membership_id: int):
    """Ask for confirmation (GET), then remove the person's second factors (POST)."""
    actor = current_actor()
    membership = users.get_user(actor, membership_id)  # another account's user: 404
    form = ActionForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = second_factor_admin.reset(actor, membership_id)
        except ServiceError as error:
            flash(error.message, "error")
            status = error.status
        else:
            flash(f"The second factors of {user.name} were removed; an e-mail tells them so.",
                  "success")
            return redirect(url_for("users.detail", membership_id=membership_id))
    return render(
        "users/reset_second_factors.html",
        membership=membership,
        user=membership.user,
        summary=second_factor_admin.summary(actor, membership.user),
        form=form,
        status=status,
    )
