"""Saved views beside the tabs of Users and Groups: Save view, Rename, Delete.

A saved view is a named URL query (portal/services/saved_views.py); opening one is a plain link
to its list. Every answer here is the block beside the tabs (#saved-views) for htmx, or a
redirect back to the list for a plain POST.
"""
from flask import Blueprint
from flask import url_for

from portal.saved_views.forms import DeleteViewForm
from portal.saved_views.forms import ViewForm
from portal.services import saved_views
from portal.services.errors import ServiceError
from portal.session import admin_required
from portal.session import current_actor
from portal.web import UNREADABLE
from portal.web import answer
from portal.web import apply_error
from portal.web import confirm

bp = Blueprint("saved_views", __name__, url_prefix="/admin/participants/views")

# The list each set of views belongs to, by its endpoint (a name, never an import of the area).
LIST_ENDPOINTS = {"users": "users.index", "groups": "groups.index"}


def list_address(list_name: str, query: str) -> str:
    """The list's address with this query (what opening a saved view is)."""
    return url_for(LIST_ENDPOINTS[list_name]) + (f"?{query}" if query else "")


def panel_context(list_name: str, query: str, **extra) -> dict:
    """What templates/_saved_views.html needs: the views and where the list lives.

    The Users and Groups lists call the service themselves (``saved_views.panel``); this is the
    same context for the answers of this area."""
    return {"saved_views": saved_views.panel(current_actor(), list_name, query),
            "list_url": url_for(LIST_ENDPOINTS[list_name]), **extra}


def _answer(list_name: str, current: str, form: ViewForm | None = None, *,
            message: str | None = None, category: str = "success", status: int = 200,
            editing: int | None = None):
    context = panel_context(list_name, current, view_form=form, editing=editing)
    back = list_address(list_name, context["saved_views"].current)
    return answer("saved_views/panel.html", "saved_views", message=message, category=category,
                  status=status, redirect_to=None if status >= 400 else back, **context)


def _opened(view_id: int, submitted, **context):
    """The view a Rename or Delete names (another account's: 404, recorded as a refused
    request), the list's query its form carries, and the answer when the form is unreadable
    (422, the panel with ``context``), else None."""
    view = saved_views.view_in_account(current_actor(), view_id)
    current = submitted.current.data or ""
    if submitted.validate_on_submit():
        return view, current, None
    return view, current, _answer(view.list_name, current, message=UNREADABLE,
                                  category="error", status=422, **context)


@bp.post("/<any(users, groups):list_name>/save")
@admin_required
def save(list_name: str):
    """Save view: the list's current query under a name."""
    form = ViewForm()
    current = form.current.data or ""
    if not form.validate_on_submit():
        return _answer(list_name, current, form, message=UNREADABLE, category="error",
                       status=422)
    try:
        view = saved_views.save_view(current_actor(), list_name, form.name.data, current)
    except ServiceError as error:
        apply_error(form, error)
        return _answer(list_name, current, form, status=error.status)
    return _answer(list_name, current, message=f"Saved the view “{view.name}”.")


@bp.post("/<int:view_id>/rename")
@admin_required
def rename(view_id: int):
    """Rename a view (another account's id: 404, recorded as a refused request)."""
    form = ViewForm()
    view, current, unreadable = _opened(view_id, form, form=form, editing=view_id)
    if unreadable is not None:
        return unreadable
    list_name = view.list_name
    try:
        old = view.name
        view = saved_views.rename_view(current_actor(), view_id, form.name.data)
    except ServiceError as error:
        apply_error(form, error)
        return _answer(list_name, current, form, status=error.status, editing=view_id)
    message = None if view.name == old else f"Renamed the view “{old}” to “{view.name}”."
    return _answer(list_name, current, message=message)


@bp.post("/<int:view_id>/delete")
@admin_required
def delete(view_id: int):
    """Delete a view, after the one confirmation (web.confirm)."""
    form = DeleteViewForm()
    view, current, unreadable = _opened(view_id, form)
    if unreadable is not None:
        return unreadable
    list_name = view.list_name
    if not form.confirmed.data:
        back = list_address(list_name, saved_views.normalise(list_name, current))
        return confirm(f"Delete the view “{view.name}”?",
                       "Only the saved search goes; the list and everyone in it stay as they are.",
                       url_for(".delete", view_id=view_id), "Delete view", back=back,
                       fields=[("current", current)], danger=True, target="#saved-views")
    deleted = saved_views.delete_view(current_actor(), view_id)
    return _answer(list_name, current, message=f"Deleted the view “{deleted.name}”.")
