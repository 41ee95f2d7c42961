"""Saved views: a named URL query of the Users or Groups list, shared by the account's admins.

The URL stays the source of truth: a view stores the list's normalised query string (search,
filters and sort; never the page), opening it is a plain link to the list with that query, and
the view whose query equals the list's current one is the active one.
"""
from dataclasses import dataclass
from urllib.parse import parse_qsl
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import SavedView
from portal.services import audit
from portal.services import scope
from portal.services.errors import NotFound
from portal.services.errors import ServiceError

# The lists that have saved views, and the query parameters a view keeps, in their URL order;
# a parameter at its default value is left out (as the lists leave it out of their URLs).
LISTS: dict[str, tuple[str, ...]] = {
    "users": ("q", "group", "state", "invitation", "sort"),
    "groups": ("q",),
}
DEFAULTS = {"sort": "name"}
MAX_NAME = 60
MAX_QUERY = 1000
# Views per list and account: the block beside the tabs stays short enough to read.
MAX_VIEWS = 30


@dataclass(frozen=True)
class ViewLink:
    """One saved view as the block beside the tabs shows it."""

    id: int
    name: str
    query: str
    active: bool


@dataclass(frozen=True)
class Panel:
    """The read model of the block beside the tabs: the list's views and its current query."""

    list_name: str
    views: tuple[ViewLink, ...]
    current: str  # the list's current query, normalised (what Save view stores)

    @property
    def active(self) -> ViewLink | None:
        return next((view for view in self.views if view.active), None)


def _list(list_name: str) -> tuple[str, ...]:
    if list_name not in LISTS:
        raise NotFound()
    return LISTS[list_name]


def normalise(list_name: str, query: str) -> str:
    """Return the list's query string as a view stores it: known parameters only, the first
    value of each, no empty or default value, no page, in a fixed order."""
    keys = _list(list_name)
    values: dict[str, str] = {}
    for key, value in parse_qsl(query or "", keep_blank_values=False):
        value = value.strip()
        if key in keys and key not in values and value and DEFAULTS.get(key) != value:
            values[key] = value
    return urlencode([(key, values[key]) for key in keys if key in values])


def clean_name(name: str | None) -> str:
    """Trim a view's name and check its length (1–60 characters)."""
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError("Give the view a name.", "name")
    if len(name) > MAX_NAME:
        raise ServiceError(f"A view's name has at most {MAX_NAME} characters.", "name")
    return name


def panel(actor, list_name: str, query: str) -> Panel:
    """Return the list's saved views (by name) with the one matching ``query`` marked."""
    current = normalise(list_name, query)
    rows = db.session.execute(
        scope.in_account(sa.select(SavedView.id, SavedView.name, SavedView.query), SavedView,
                         actor)
        .where(SavedView.list_name == list_name)
        .order_by(SavedView.name_key, SavedView.id)
    ).all()
    return Panel(list_name, tuple(ViewLink(row.id, row.name, row.query, row.query == current)
                                  for row in rows), current)


def view_in_account(actor, view_id) -> SavedView:
    """Return one of the account's views (another account's id: OutOfScope, a 404)."""
    return scope.get_in_account(SavedView, view_id, actor)


def _taken(name: str) -> ServiceError:
    return ServiceError(f"A view named “{name}” exists already on this list: choose another "
                        "name.", "name")


def _check_name_free(actor, list_name: str, name: str, except_id: int | None = None) -> None:
    stmt = scope.in_account(sa.select(SavedView.id), SavedView, actor).where(
        SavedView.list_name == list_name, SavedView.name_key == name.lower())
    if except_id is not None:
        stmt = stmt.where(SavedView.id != except_id)
    if db.session.scalar(stmt) is not None:
        raise _taken(name)


def _commit(name: str) -> None:
    try:
        db.session.commit()
    except IntegrityError:  # the same name saved at the same moment by another admin
        db.session.rollback()
        raise _taken(name) from None


def save_view(actor, list_name: str, name: str, query: str) -> SavedView:
    """Save the list's current query under a name, for every admin of the account."""
    query = normalise(list_name, query)
    name = clean_name(name)
    if len(query) > MAX_QUERY:
        raise ServiceError("This search is too long to save as a view.", "name")
    _check_name_free(actor, list_name, name)
    count = db.session.scalar(scope.in_account(
        sa.select(sa.func.count(SavedView.id)), SavedView, actor
    ).where(SavedView.list_name == list_name))
    if count >= MAX_VIEWS:
        raise ServiceError(f"This list has {MAX_VIEWS} saved views already: delete one first.",
                           "name")
    view = SavedView(account_id=actor.account_id, list_name=list_name, name=name,
                     name_key=name.lower(), query=query)
    db.session.add(view)
    db.session.flush()
    audit.record(actor, "saved_view.created", view=view.id, list=list_name, name=name,
                 query=query)
    _commit(name)
    return view


def rename_view(actor, view_id, name: str) -> SavedView:
    """Rename one of the account's views (names stay unique per list, whatever their case)."""
    view = view_in_account(actor, view_id)
    name = clean_name(name)
    if name == view.name:
        return view
    _check_name_free(actor, view.list_name, name, except_id=view.id)
    old = view.name
    view.name, view.name_key = name, name.lower()
    audit.record(actor, "saved_view.renamed", view=view.id, list=view.list_name, old=old,
                 new=name)
    _commit(name)
    return view


def delete_view(actor, view_id) -> SavedView:
    """Delete one of the account's views; return it (its name and list stay readable)."""
    view = view_in_account(actor, view_id)
    audit.record(actor, "saved_view.deleted", view=view.id, list=view.list_name, name=view.name,
                 query=view.query)
    db.session.delete(view)
    db.session.commit()
    return view
