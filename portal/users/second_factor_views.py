"""User Details › Reset second factors (issue 18), confirmed on its own page.

Registered on the users blueprint: imported by portal.register_blueprints.
"""
from flask import flash
from flask import redirect
from flask import url_for

from portal.auth.session import admin_required
from portal.auth.session import current_actor
from portal.services import second_factor_admin
from portal.services import users
from portal.services.errors import ServiceError
from portal.users.forms import ActionForm
from portal.users.views import bp
from portal.web import render


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
