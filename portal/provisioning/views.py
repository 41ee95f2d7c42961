"""Settings › Provisioning: admins create SCIM tokens (shown once) and revoke them."""
from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import url_for

from portal.provisioning.forms import TokenForm
from portal.services import scim_tokens
from portal.services.errors import ServiceError
from portal.session import admin_required
from portal.session import current_actor
from portal.web import apply_error
from portal.web import render

bp = Blueprint("provisioning", __name__, url_prefix="/admin/settings/provisioning")


def _page(form: TokenForm, *, new_token: str | None = None, status: int = 200):
    actor = current_actor()
    return render(
        "provisioning/index.html",
        form=form,
        tokens=scim_tokens.list_tokens(actor),
        account=actor.account,
        scim_url=current_app.config["BASE_URL"].rstrip("/") + "/scim/v2",
        new_token=new_token,
        status=status,
    )


@bp.route("/", methods=["GET", "POST"])
@admin_required
def index():
    """Show the SCIM endpoint and the tokens; a POST creates a token and shows it once (it is
    stored hashed and never shown again)."""
    form = TokenForm()
    if not form.is_submitted():
        return _page(TokenForm(formdata=None))
    if form.validate_on_submit():
        try:
            _token, raw = scim_tokens.create_token(
                current_actor(), form.name.data, send_invitations=form.send_invitations.data
            )
        except ServiceError as error:
            apply_error(form, error)
        else:
            # Rendered, not redirected: the token must not travel through a flash or a URL.
            return _page(TokenForm(formdata=None), new_token=raw, status=201)
    return _page(form, status=422)


@bp.post("/<int:token_id>/revoke")
@admin_required
def revoke(token_id):
    """Revoke a token: the identity provider's next request with it gets 401."""
    token = scim_tokens.revoke_token(current_actor(), token_id)
    flash(f"Revoked the token \u201c{token.name}\u201d.", "success")
    return redirect(url_for("provisioning.index"))
