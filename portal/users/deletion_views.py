"""Delete (Users tab selection bar, User Details) and the Deleted users page with Restore.

A nested blueprint of ``users`` (endpoints ``users.deletion.*``): its screens live under the
Users tab's URL (DESIGN §4), and the deletion feature reads in one place.
"""
from flask import Blueprint
from flask import flash
from flask import redirect
from flask import request
from flask import url_for

from portal.selection import STATE_LABELS
from portal.selection import list_context
from portal.selection import rows_response
from portal.services import deletion
from portal.services.errors import ServiceError
from portal.session import admin_required
from portal.session import current_actor
from portal.users.deletion_forms import DeleteForm
from portal.users.deletion_forms import RestoreForm
from portal.web import UNREADABLE
from portal.web import is_htmx
from portal.web import render

bp = Blueprint("deletion", __name__)


def _plural(count: int, word: str = "user") -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def fix_links(blocked: deletion.Blocked) -> list[tuple[str, str]]:
    """Return the links that lead an admin to what unblocks this deletion."""
    if blocked.kind == deletion.BlockKind.LAST_ADMIN:
        return [("Make another user an admin", url_for("users.index"))]
    if blocked.kind == deletion.BlockKind.ONLY_MEMBER:
        return [
            ("Add someone to the group", url_for("groups.detail", group_id=blocked.group_id)),
            ("Assign the step to another group",
             url_for("taskstreams.detail", taskstream_id=blocked.taskstream_id)),
        ]
    return []


def describe_filter(form: DeleteForm, groups: list[tuple[int, str]]) -> str:
    """Say in words which users "all matching" means (search, group, state)."""
    user_filter = form.user_filter()
    parts = []
    if user_filter.q:
        parts.append(f"search \u201c{user_filter.q}\u201d")
    if user_filter.group_id:
        names = dict(groups)
        parts.append(f"group \u201c{names.get(user_filter.group_id, '?')}\u201d")
    if user_filter.state:
        parts.append(f"state {STATE_LABELS[user_filter.state]}")
    return ", ".join(parts)


def _confirmation(form: DeleteForm, **panel):
    """Ask before deleting (or say why not): the one confirmation dialog for htmx, the users
    list with the question in its side panel without JavaScript."""
    context = list_context(form)
    return render("users/delete.html", "confirm", filter_text=describe_filter(form, context["groups"]),
                  fix_links=fix_links, retention_days=deletion.retention_days(), **context, **panel)


def _deleted_message(report: deletion.DeleteReport) -> tuple[str, str]:
    if report.deleted:
        days = deletion.retention_days()
        text = (f"Deleted {_plural(report.deleted)}. Deleted users can be restored for {days} "
                "days from Deleted users.")
        return text, "success"
    if report.blocked:
        return "No user was deleted.", "warning"
    return "Nothing to delete: the selected users were already deleted.", "warning"


@bp.post("/bulk/delete")
@admin_required
def bulk_delete():
    """Confirm deleting the selection (how many, which filter, who is blocked), then delete."""
    form = DeleteForm()
    if not form.validate_on_submit():
        return rows_response(form, UNREADABLE, "error")
    actor = current_actor()
    if not form.confirmed.data:
        try:
            plan = deletion.plan_delete(actor, form.selection())
        except ServiceError as error:
            return _confirmation(form, error=error.message)
        return _confirmation(form, plan=plan)
    try:
        report = deletion.delete_users(actor, form.selection())
    except ServiceError as error:
        return rows_response(form, error.message, "error")
    message, category = _deleted_message(report)
    if form.origin.data == "detail" or not is_htmx():
        # A page answer: every blocked user is named in a flash (links need the side panel).
        flash(message, category)
        for blocked in report.blocked:
            flash(f"{blocked.name} was not deleted: {blocked.reason}", "error")
        if form.origin.data == "detail" and report.blocked:
            return redirect(url_for("users.detail", membership_id=report.blocked[0].membership_id))
        return redirect(url_for("users.index", **list_context(form)["query"]))
    if report.blocked:
        message += f" {_plural(len(report.blocked))} could not be deleted; the dialog says why."
    return rows_response(
        form, message, category,
        oob=(("users/delete.html", "confirm_oob"),) if report.blocked else (),
        trigger=None if report.blocked else "closeSidebar",
        report=report, fix_links=fix_links,
    )


@bp.get("/deleted")
@admin_required
def deleted():
    """List the deleted users: who, when, by whom, and when the purge erases them."""
    page = deletion.list_deleted(current_actor(), request.args.get("page", 1, type=int))
    return render("users/deleted.html", "rows", page=page,
                  retention_days=deletion.retention_days())


@bp.post("/deleted/restore")
@admin_required
def restore():
    """Restore the checked deleted users, or the one whose Restore was clicked."""
    form = RestoreForm()
    actor = current_actor()
    if not form.validate_on_submit():
        flash(UNREADABLE, "error")
    else:
        try:
            report = deletion.restore_users(actor, form.chosen())
        except ServiceError as error:
            flash(error.message, "error")
        else:
            _flash_restored(report)
    if not is_htmx():
        return redirect(url_for(".deleted", page=form.page_number()))
    page = deletion.list_deleted(actor, form.page_number())
    return render("users/deleted.html", "rows", page=page,
                  retention_days=deletion.retention_days())


def _flash_restored(report: deletion.RestoreReport) -> None:
    if report.restored:
        flash(f"Restored {_plural(report.restored)} with the groups and role they had.", "success")
    for refused in report.refused:
        flash(f"{refused.name} was not restored: {refused.reason}", "error")
    if report.unrecoverable:
        flash(f"{_plural(report.unrecoverable, 'selected user')} "
              f"{'is' if report.unrecoverable == 1 else 'are'} no longer recoverable: "
              "erased by the purge after the retention period.", "error")
