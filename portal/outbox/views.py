"""Outgoing mail of the account, readable by its admins (the embedded, no-SMTP case)."""
from flask import Blueprint
from flask import request
from flask import url_for

from portal.forms import page_number
from portal.outbox.forms import OutboxListForm
from portal.services import mail
from portal.services import outbox
from portal.session import admin_required
from portal.session import current_actor
from portal.web import push_url
from portal.web import render

bp = Blueprint("outbox", __name__, url_prefix="/admin/outbox")


@bp.route("/")
@admin_required
def index():
    """List the account's outgoing e-mails: paged, searched, filtered by state; htmx gets the rows."""
    form = OutboxListForm(request.args)
    page = outbox.list_page(current_actor(), q=form.q.data or "", state=form.state.data,
                            page=page_number(form.page))
    query = {key: value for key, value in
             (("q", page.q), ("state", page.state), ("page", page.page if page.page > 1 else None))
             if value}
    response = render("outbox/index.html", "messages", page=page, query=query,
                      state_labels=outbox.STATE_LABELS, smtp=outbox.smtp_configured())
    return push_url(response, url_for("outbox.index", **query))


@bp.route("/<message_id>")
@admin_required
def detail(message_id):
    """Show one e-mail as it was (or will be) sent, links that grant a credential hidden."""
    message = outbox.get_message(current_actor(), message_id)
    return render("outbox/detail.html", message=message, body=mail.preview(message))
