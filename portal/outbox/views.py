"""Outgoing mail of the account, readable by its admins (the embedded, no-SMTP case)."""
from flask import Blueprint

from portal.auth.session import admin_required
from portal.auth.session import current_actor
from portal.models import OutboxMessage
from portal.services import mail
from portal.services import outbox
from portal.services import scope
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
    message = scope.get_in_account(OutboxMessage, message_id, current_actor())
    return render("outbox/detail.html", message=message, body=mail.preview(message))
