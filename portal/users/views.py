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
from portal.services import profiles
from portal.services import second_factor_admin
from portal.services import users
from portal.services.errors import Conflict
from portal.services.errors import ServiceError
from portal.users.forms import STATE_LABELS
from portal.users.forms import ActionForm
from portal.users.forms import ActivityReportForm
from portal.users.forms import ListForm
from portal.users.forms import NewUserForm
from portal.users.forms import ProfileForm
from portal.users.forms import RoleForm
from portal.users.forms import SelectionForm
from portal.users.forms import group_options
from portal.web import apply_error
from portal.web import is_fragment_request
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
    context = list_context(ListForm(request.args))
    response = render("users/index.html", "rows", **context)
    if is_fragment_request():
        # The address bar gets the tidy form of the query (no empty or default parameters).
        response.headers["HX-Push-Url"] = url_for("users.index", **context["query"])
    return response


@bp.route("/<int:membership_id>")
@admin_required
def detail(membership_id: int):
    """Show one user: profile, groups, devices, danger zone and recent activity."""
    return render("users/detail.html", **_detail_context(membership_id))


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


# --- New User ------------------------------------------------------------------------------


def _new_user_form(formdata=None) -> NewUserForm:
    form = NewUserForm(formdata) if formdata is not None else NewUserForm()
    form.groups.choices = group_options(users.group_choices(current_actor()))
    return form


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new():
    """New User in the sidebar: invite a person, or link one who exists, with groups and role."""
    list_form = ListForm(request.args)
    form = _new_user_form()
    if form.validate_on_submit():
        try:
            membership = invitations.add_person(
                current_actor(),
                name=form.name.data,
                email=form.email.data,
                phone=form.phone.data,
                role=form.role.data,
                group_ids=form.groups.data or (),
            )
        except ServiceError as error:
            apply_error(form, error)
        else:
            flash(f"Added {membership.user.name}; an e-mail is on its way to "
                  f"{membership.user.email}.", "success")
            context = list_context(list_form)
            if not is_fragment_request():
                return redirect(url_for("users.index", **context["query"]))
            return render("users/index.html", "rows_oob", trigger="closeSidebar", **context)
    status = 422 if form.errors else 200
    return render("users/new.html", "sidebar", status=status, new_form=form,
                  **list_context(list_form))


# --- User details: edit, role, Reset Password, Resend Invite, activity report ---------------


def _detail_context(membership_id: int, **forms) -> dict:
    """Return what templates/users/detail.html needs; ``forms`` replace the blank ones."""
    actor = current_actor()
    details = users.user_details(actor, membership_id)
    membership = details.membership
    user = membership.user
    context = {
        "details": details,
        "membership": membership,
        "user": user,
        "can_change_email": profiles.can_change_identity(actor, user),
        "profile_form": ProfileForm(formdata=None, obj=user, version=user.version),
        "role_form": RoleForm(formdata=None, role=membership.role),
        "report_form": ActivityReportForm(formdata=None),
        "second_factor": second_factor_admin.summary(actor, user),
        "editing": False,
    }
    context.update(forms)
    return context


def _detail_response(membership_id: int, *, status: int = 200, **context):
    """Answer a user-details action: the page's sections out of band (htmx) or the page."""
    if not is_fragment_request() and status < 400:
        return redirect(url_for("users.detail", membership_id=membership_id))
    return render("users/detail.html", "user_head", "profile", "activity", status=status,
                  sections_oob=True, **_detail_context(membership_id, **context))


@bp.route("/<int:membership_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(membership_id: int):
    """Edit the profile (name, e-mail, phone); a save based on a stale copy is refused (409)."""
    form = ProfileForm()
    if request.method == "GET":
        context = _detail_context(membership_id, editing=True)
        return render("users/detail.html", "profile", **context)
    if not form.validate_on_submit():
        return _detail_response(membership_id, status=422, profile_form=form, editing=True)
    try:
        update = profiles.update_profile(
            current_actor(), membership_id, name=form.name.data, email=form.email.data,
            phone=form.phone.data, version=form.version.data,
        )
    except Conflict as error:
        # Show the current values, so the admin sees what changed and can redo their edit.
        flash(error.message, "error")
        return _detail_response(membership_id, status=409, editing=True)
    except ServiceError as error:
        apply_error(form, error)
        return _detail_response(membership_id, status=error.status, profile_form=form,
                                editing=True)
    flash(str(update), "success" if update.changed else "info")
    return _detail_response(membership_id)


@bp.post("/<int:membership_id>/role")
@admin_required
def change_role(membership_id: int):
    """Make the user an admin or a member; the last admin cannot be made a member (409)."""
    form = RoleForm()
    if not form.validate_on_submit():
        flash("Choose member or admin.", "error")
        return _detail_response(membership_id, status=422)
    try:
        membership = profiles.change_role(current_actor(), membership_id, form.role.data)
    except ServiceError as error:
        flash(error.message, "error")
        return _detail_response(membership_id, status=error.status)
    flash(f"{membership.user.name} is now {'an admin' if membership.is_admin else 'a member'}.",
          "success")
    return _detail_response(membership_id)


@bp.post("/<int:membership_id>/reset-password")
@admin_required
def reset_password(membership_id: int):
    """Reset Password: mail the user a link to choose a new password."""

    def act(_form):
        user = profiles.send_password_reset(current_actor(), membership_id)
        return f"A link to reset the password was sent to {user.email}."

    return _detail_action(membership_id, ActionForm(), act)


@bp.post("/<int:membership_id>/resend-invite")
@admin_required
def resend_invite(membership_id: int):
    """Resend Invite to this user (a new link; the old one stops working)."""

    def act(_form):
        selection = users.Selection(ids=(membership_id,))
        return str(invitations.resend_invites(current_actor(), selection))

    return _detail_action(membership_id, ActionForm(), act)


@bp.post("/<int:membership_id>/activity-report")
@admin_required
def activity_report(membership_id: int):
    """Send activity report: mail the user their own activity here over the chosen period."""

    def act(form):
        report = profiles.send_activity_report(current_actor(), membership_id, form.days.data)
        return (f"The activity report of the last {report.days} days ({report.total} "
                f"event{'' if report.total == 1 else 's'}) is on its way.")

    return _detail_action(membership_id, ActivityReportForm(), act)


def _detail_action(membership_id: int, form, act):
    """Validate a details-page button's form, call ``act(form)`` and flash what it says."""
    users.get_user(current_actor(), membership_id)  # another account's user: 404 first
    if not form.validate_on_submit():
        flash("The form could not be read; reload the page and try again.", "error")
        return _detail_response(membership_id, status=422)
    try:
        message = act(form)
    except ServiceError as error:
        flash(error.message, "error")
        return _detail_response(membership_id, status=error.status)
    flash(message, "success")
    return _detail_response(membership_id)
