"""Admin → More → Settings: password policy, invitation validity, sender name; device limit shown."""
from flask import Blueprint
from flask import url_for

from portal.services import settings
from portal.services.errors import ServiceError
from portal.session import admin_required
from portal.session import current_actor
from portal.settings.forms import SettingsForm
from portal.web import answer
from portal.web import apply_error
from portal.web import render

bp = Blueprint("settings", __name__, url_prefix="/admin/settings")


@bp.route("/", methods=["GET", "POST"])
@admin_required
def edit():
    """Show and change the account's settings."""
    actor = current_actor()
    form = SettingsForm(obj=actor.account)
    if form.validate_on_submit():
        try:
            changes = settings.update_settings(
                actor,
                password_min_length=form.password_min_length.data,
                password_require_classes=form.password_require_classes.data,
                invite_valid_hours=form.invite_valid_hours.data,
                sender_name=form.sender_name.data,
                second_factor_rule=form.second_factor_rule.data,
            )
        except ServiceError as error:
            apply_error(form, error)
        else:
            return answer("settings/edit.html", "settings",
                          message="Settings saved." if changes else "Nothing changed.",
                          redirect_to=url_for("settings.edit"), form=form,
                          account=actor.account, ranges=settings.RANGES)
    return render(
        "settings/edit.html",
        "settings",
        form=form,
        account=actor.account,
        ranges=settings.RANGES,
        status=422 if form.errors else 200,
    )
