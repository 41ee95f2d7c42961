"""Outgoing mail of the account, readable by its admins (the embedded, no-SMTP case)."""
from flask import Blueprint

from portal.services import mail
from portal.services import outbox
from portal.session import admin_required
from portal.session import current_actor
from portal.web import render

bp = Blueprint("outbox", __name__, url_prefix="/admin/outbox")


@bp.route("/")
@admin_required
def index():
    """List the account's newest outgoing e-mails and their delivery state."""
    return render(
        "outbox/index.html",
        messages=outbox.list_messages(current_actor().account_id),
        smtp=outbox.smtp_configured(),
    )


@bp.route("/<message_id>")
@admin_required
def detail(message_id):
    """Show one e-mail as it was (or will be) sent, links that grant a credential hidden."""
    message = outbox.get_message(current_actor(), message_id)
    return render("outbox/detail.html", message=message, body=mail.preview(message))
