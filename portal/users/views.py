"""Admin → Process Setup → Participants → Users: the list, selection and bulk actions, details.

Other areas hang their bulk actions on this list. A bulk endpoint is one POST view:

    @bp.post("/bulk/<verb>")
    @admin_required
    def bulk_<verb>():
        form = SelectionForm()
        if not form.validate_on_submit():
            return rows_response(form, UNREADABLE_SELECTION, "error")
        try:
            done = some_service.do_it(current_actor(), form.selection())
        except ServiceError as error:
            return rows_response(form, error.message, "error")
        return rows_response(form, f"Did it to {done} users.")

and a button in templates/users/index.html (see the comment there).
"""
from flask import Blueprint
from flask import flash
from flask import redirect
from flask import request
from flask import url_for

from portal.auth.session import admin_required
from portal.auth.session import current_actor
from portal.services import invitations
from portal.services import users
from portal.services.errors import ServiceError
from portal.users.forms import STATE_LABELS
from portal.users.forms import ListForm
from portal.users.forms import SelectionForm
from portal.web import render

bp = Blueprint("users", __name__, url_prefix="/admin/participants/users")

UNREADABLE_SELECTION = "The selection could not be read; reload the page and try again."


def list_context(form: ListForm) -> dict:
    """Return what templates/users/index.html needs to render the list for this query."""
    actor = current_actor()
    page = users.list_users(actor, form.user_filter(), form.sort_key(), form.page_number())
    return {
        "form": form,
        "page": page,
        "query": _query(page),
        "groups": users.group_choices(actor),
        "state_labels": STATE_LABELS,
    }


def _query(page: users.UserPage) -> dict:
    """Return the URL parameters that reproduce this view of the list (empty ones left out)."""
    query = {
        "q": page.filter.q or None,
        "group": page.filter.group_id,
        "state": page.filter.state,
        "sort": page.sort if page.sort != "name" else None,
        "page": page.page if page.page != 1 else None,
    }
    return {key: value for key, value in query.items() if value is not None}


def rows_response(form: SelectionForm, message: str, category: str = "success", *, status=200,
                  trigger: str | None = None, oob: tuple[tuple[str, str], ...] = (),
                  block: str = "rows", **extra):
    """Answer a bulk action: the refreshed rows plus an out-of-band flash (htmx), else redirect.

    Every bulk endpoint (``users.bulk_*``, ``groups.bulk_add_to_group``, ...) ends with this,
    passing the SelectionForm it validated, so the list comes back as the admin left it
    (same search, filters, sort and page) with the selection cleared. ``oob`` adds regions of
    other templates out of band (Delete's side panel), rendered with ``extra`` in the context.
    A side panel's form that answers into #sidebar (Add to Group) asks for ``block="rows_oob"``:
    the rows out of band, and ``trigger="closeSidebar"``.
    """
    flash(message, category)
    context = list_context(form)
    if request.headers.get("HX-Request") != "true":
        return redirect(url_for("users.index", **context["query"]))
    return render("users/index.html", block, status=status, trigger=trigger, oob=oob,
                  **context, **extra)


@bp.route("/")
@admin_required
def index():
    """List the account's users: search, filter, sort, page; htmx gets only the rows."""
    return render("users/index.html", "rows", **list_context(ListForm(request.args)))


@bp.route("/<int:membership_id>")
@admin_required
def detail(membership_id: int):
    """Show one user: profile, groups, devices, danger zone and recent activity."""
    details = users.user_details(current_actor(), membership_id)
    return render(
        "users/detail.html",
        details=details,
        membership=details.membership,
        user=details.membership.user,
    )


@bp.post("/bulk/resend-invite")
@admin_required
def bulk_resend_invite():
    """Resend Invite to the selection; those who have signed in are skipped and counted."""
    form = SelectionForm()
    if not form.validate_on_submit():
        return rows_response(form, UNREADABLE_SELECTION, "error")
    try:
        report = invitations.resend_invites(current_actor(), form.selection())
    except ServiceError as error:
        return rows_response(form, error.message, "error")
    return rows_response(form, str(report), "success" if report.resent else "warning")
