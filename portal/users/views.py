"""Admin → Process Setup → Participants → Users: the list, selection and bulk actions, details.

Import/Export (``users.csv``), Delete with Deleted users (``users.deletion``) and Reset second
factors (``users.second_factors``) are nested blueprints of this one, registered below. A bulk action is one POST view answering with
``portal.selection.rows_response`` (ARCHITECTURE.md, "A new bulk action").
"""
from flask import Blueprint
from flask import request
from flask import url_for

from portal.forms import ActionForm
from portal.forms import group_options
from portal.selection import ListForm
from portal.selection import SelectionForm
from portal.selection import confirm_selection
from portal.selection import list_context
from portal.selection import rows_response
from portal.services import invitation_states
from portal.services import invitations
from portal.services import mail
from portal.services import profiles
from portal.services import user_details
from portal.services import users
from portal.services.errors import Conflict
from portal.services.errors import ServiceError
from portal.session import admin_required
from portal.session import current_actor
from portal.session import current_device
from portal.users import csv_views
from portal.users import deletion_views
from portal.users import second_factor_views
from portal.users.forms import ActivityReportForm
from portal.users.forms import ConfirmForm
from portal.users.forms import NewUserForm
from portal.users.forms import ProfileForm
from portal.users.forms import RoleForm
from portal.web import UNREADABLE
from portal.web import answer
from portal.web import apply_error
from portal.web import confirm
from portal.web import is_fragment_request
from portal.web import push_url
from portal.web import render

bp = Blueprint("users", __name__, url_prefix="/admin/participants/users")
bp.register_blueprint(csv_views.bp)
bp.register_blueprint(deletion_views.bp)
bp.register_blueprint(second_factor_views.bp)


@bp.route("/")
@admin_required
def index():
    """List the account's users: search, filter, sort, page; htmx gets only the rows."""
    blocks = ("rows", "saved_views_oob")
    context = list_context(ListForm(request.args),
                           blocks=blocks if is_fragment_request() else None)
    # The address bar gets the tidy form of the query (no empty or default parameters).
    # The saved views out of band too: the one of this query is marked as the active one.
    return push_url(render("users/index.html", *blocks, **context),
                    url_for("users.index", **context["query"]))


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
        return rows_response(form, UNREADABLE, "error", block="rows_oob")
    try:
        if not form.confirmed.data:
            count = users.count_selected(current_actor(), form.selection())
            if form.selection().all_matching or count > 1:
                return confirm_selection(
                    form, f"Resend {count:,} invitation{'' if count == 1 else 's'}?",
                    "Each person who has not signed in yet gets a new link; their earlier links"
                    " stop working. People who have already signed in are skipped.",
                    "Resend Invite", url_for("users.bulk_resend_invite"),
                )
        report = invitations.resend_invites(current_actor(), form.selection())
    except ServiceError as error:
        return rows_response(form, error.message, "error", block="rows_oob")
    return rows_response(form, str(report),
                         "success" if report.resent or report.queued else "warning",
                         block="rows_oob")


@bp.post("/resend-lapsed")
@admin_required
def resend_lapsed():
    """Resend Invite to everyone whose invitation expired or was refused (asks first)."""
    form = ConfirmForm()
    list_form = ListForm(request.form)
    oob = (("users/index.html", "invitations_oob"),)
    if not form.validate_on_submit():
        return rows_response(list_form, UNREADABLE, "error", block="rows_oob", oob=oob)
    if not form.confirmed.data:
        lapsed = invitation_states.summary(current_actor(), exact=True)
        query = list_context(list_form)["query"]
        return confirm(
            f"Resend {lapsed.lapsed:,} invitation{'' if lapsed.lapsed == 1 else 's'}?",
            f"{lapsed}. Each of them gets a new link by e-mail; their earlier links stop working.",
            url_for("users.resend_lapsed"), "Resend Invite",
            back=url_for("users.index", **query), fields=list(query.items()),
        )
    report = invitations.resend_lapsed(current_actor())
    return rows_response(list_form, str(report), "success" if report.resent else "warning",
                         block="rows_oob", oob=oob)


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
            context = list_context(list_form)
            return answer("users/index.html", "rows_oob", trigger="closeSidebar",
                          message=f"Added {membership.shown_name}; "
                                  f"{mail.on_its_way('an e-mail', membership.user.email)}.",
                          redirect_to=url_for("users.index", **context["query"]), **context)
    status = 422 if form.errors else 200
    return render("users/new.html", "sidebar", status=status, new_form=form,
                  **list_context(list_form))


# --- User details: edit, role, Reset Password, Resend Invite, activity report ---------------


def _detail_context(membership_id: int, **forms) -> dict:
    """Return what templates/users/detail.html needs; ``forms`` replace the blank ones."""
    details = user_details.user_details(current_actor(), membership_id,
                                        device_id=current_device().id)
    membership, user = details.membership, details.user
    context = {
        "details": details,
        "participation": details.participation,
        "second_factor": details.second_factor,
        "membership": membership,
        "user": user,
        "profile_form": ProfileForm(formdata=None, obj=user, version=user.version),
        "role_form": RoleForm(formdata=None, role=membership.role),
        "report_form": ActivityReportForm(formdata=None),
        "editing": False,
        "copied_link": None,
    }
    context.update(forms)
    return context


# What an action on User Details answers with (htmx): the page's title and its sections.
SECTIONS_OOB = ("title_oob", "user_head_oob", "profile_oob", "activity_oob")


def _detail_response(membership_id: int, *, status: int = 200, message: str | None = None,
                     category: str = "success", **context):
    """Answer a user-details action: the page's sections out of band (htmx) or the page."""
    target = url_for("users.detail", membership_id=membership_id) if status < 400 else None
    return answer("users/detail.html", *SECTIONS_OOB,
                  status=status, message=message, category=category, redirect_to=target,
                  **_detail_context(membership_id, **context))


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
        return _detail_response(membership_id, status=409, message=error.message,
                                category="error", editing=True)
    except ServiceError as error:
        apply_error(form, error)
        return _detail_response(membership_id, status=error.status, profile_form=form,
                                editing=True)
    return _detail_response(membership_id, message=str(update),
                            category="success" if update.changed else "info")


@bp.post("/<int:membership_id>/role")
@admin_required
def change_role(membership_id: int):
    """Make the user an admin or a member; the last admin cannot be made a member (409)."""
    form = RoleForm()
    if not form.validate_on_submit():
        return _detail_response(membership_id, status=422, message="Choose member or admin.",
                                category="error")
    try:
        membership = profiles.change_role(current_actor(), membership_id, form.role.data)
    except ServiceError as error:
        return _detail_response(membership_id, status=error.status, message=error.message,
                                category="error")
    return _detail_response(membership_id, message=f"{membership.shown_name} is now "
                            f"{'an admin' if membership.is_admin else 'a member'}.")


@bp.post("/<int:membership_id>/reset-password")
@admin_required
def reset_password(membership_id: int):
    """Reset Password: mail the user a link to choose a new password."""

    def act(_form):
        user = profiles.send_password_reset(current_actor(), membership_id)
        return f"{mail.on_its_way('A link to reset the password', user.email)}."

    return _detail_action(membership_id, ActionForm(), act)


@bp.post("/<int:membership_id>/resend-invite")
@admin_required
def resend_invite(membership_id: int):
    """Resend Invite to this user (a new link; the old one stops working)."""

    def act(_form):
        selection = users.Selection(ids=(membership_id,))
        return str(invitations.resend_invites(current_actor(), selection))

    return _detail_action(membership_id, ActionForm(), act)


@bp.post("/<int:membership_id>/copy-invitation-link")
@admin_required
def copy_invitation_link(membership_id: int):
    """Copy invitation link: mint a fresh link to hand over (asks first when one went out)."""
    form = ConfirmForm()
    details = user_details.user_details(current_actor(), membership_id)  # 404 across accounts
    if not form.validate_on_submit():
        return _detail_response(membership_id, status=422, message=UNREADABLE, category="error")
    if details.copy_replaces_sent_link and not form.confirmed.data:
        sent = details.invitation_sent_at.strftime("%Y-%m-%d %H:%M")
        return confirm(
            "Copy a new invitation link?",
            f"The invitation link that went to {details.user.email} on {sent} UTC stops working;"
            " only the new one lets them in.",
            url_for("users.copy_invitation_link", membership_id=membership_id),
            "Copy invitation link",
            back=url_for("users.detail", membership_id=membership_id),
        )
    try:
        copied = invitations.copy_invitation_link(current_actor(), membership_id)
    except ServiceError as error:
        return _detail_response(membership_id, status=error.status, message=error.message,
                                category="error")
    message = ("A new invitation link is ready to hand over; earlier links stop working"
               + ("; the queued e-mail will not be sent." if copied.replaced_queued else "."))
    # Shown in this answer only (no redirect: the link is never in a page anyone can reload).
    return answer("users/detail.html", *SECTIONS_OOB,
                  message=message, **_detail_context(membership_id, copied_link=copied))


@bp.post("/<int:membership_id>/activity-report")
@admin_required
def activity_report(membership_id: int):
    """Send activity report: mail the user their own activity here over the chosen period."""

    def act(form):
        report = profiles.send_activity_report(current_actor(), membership_id, form.days.data)
        return mail.on_its_way(f"The activity report of the last {report.days} days "
                               f"({report.total} event{'' if report.total == 1 else 's'})") + "."

    return _detail_action(membership_id, ActivityReportForm(), act)


def _detail_action(membership_id: int, form, act):
    """Validate a details-page button's form, call ``act(form)`` and flash what it says."""
    users.get_user(current_actor(), membership_id)  # another account's user: 404 first
    if not form.validate_on_submit():
        return _detail_response(membership_id, status=422, message=UNREADABLE, category="error")
    try:
        message = act(form)
    except ServiceError as error:
        return _detail_response(membership_id, status=error.status, message=error.message,
                                category="error")
    return _detail_response(membership_id, message=message)
