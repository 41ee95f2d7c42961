"""Admin → More → Audit trail (/admin/audit): every event of the account, newest first.

Filters (who, whom, what, from–to) ride in the URL, pages go by keyset (the event a page starts
after), and Export to CSV streams the same filtered trail. The account comes from the session;
``services.audit_trail`` scopes every query to it.
"""
from flask import Blueprint
from flask import request

from portal.audit_log.forms import TrailForm
from portal.services import audit_trail
from portal.services.errors import ServiceError
from portal.session import admin_required
from portal.session import current_actor
from portal.web import apply_error
from portal.web import download
from portal.web import render

bp = Blueprint("audit_log", __name__, url_prefix="/admin/audit")


def _form() -> TrailForm:
    form = TrailForm(request.args)
    form.what.choices = [("", "Everything")] + [
        (key, label) for key, (label, _actions) in audit_trail.TOPICS.items()
    ]
    return form


def _filter(form: TrailForm) -> audit_trail.TrailFilter:
    return audit_trail.TrailFilter(
        who=form.who.data or "", whom=form.whom.data or "", what=form.what.data or "",
        since=form.since.data, until=form.until.data,
    )


@bp.route("/")
@admin_required
def index():
    """List the account's audit trail: filters and keyset pages; htmx gets only the results."""
    form = _form()
    status = 200
    page = None
    if form.validate():
        trail_filter = _filter(form)
        try:
            page = audit_trail.trail_page(current_actor(), trail_filter,
                                          before=form.before.data or None,
                                          after=form.after.data or None)
        except ServiceError as error:
            apply_error(form, error)
    if page is None:
        status = 422
        page = audit_trail.TrailPage(rows=[], size=audit_trail.PAGE_SIZE)
    return render("audit_log/index.html", "results", status=status, form=form, page=page,
                  query=page.filter.query())


@bp.route("/export")
@admin_required
def export():
    """Export to CSV: the filtered trail as a streamed download (newest first)."""
    form = _form()
    if not form.validate():
        return index()
    try:
        trail = audit_trail.export_trail(current_actor(), _filter(form))
    except ServiceError:
        return index()
    return download(trail.filename, trail.chunks)
