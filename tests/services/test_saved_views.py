"""Saved views (issue 15, item 5): a named, normalised URL query per account and list, with
names trimmed, 1–60 characters, unique per account and list, and an audit event per change."""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import SavedView
from portal.services import saved_views
from portal.services.errors import NotFound
from portal.services.errors import OutOfScope
from portal.services.errors import ServiceError
from tests.builders import make_account


def actions() -> list[tuple[str, dict]]:
    return [(e.action, e.details) for e in db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action.like("saved_view.%")).order_by(AuditEvent.id))]


def test_the_query_is_normalised_known_parameters_only_no_page_no_defaults():
    assert saved_views.normalise(
        "users", "page=3&sort=name&q=+ana+&zz=1&group=4&q=other&state=&invitation=expired"
    ) == "q=ana&group=4&invitation=expired"
    assert saved_views.normalise("users", "sort=-last_seen&q=a%26b") == "q=a%26b&sort=-last_seen"
    assert saved_views.normalise("groups", "q=red&sort=name&page=2") == "q=red"
    assert saved_views.normalise("groups", "") == ""
    with pytest.raises(NotFound):
        saved_views.normalise("taskstreams", "q=x")


def test_save_lists_marks_the_active_one_renames_and_deletes_with_audit_events(app, account):
    actor = account.admin
    view = saved_views.save_view(actor, "users", "  Expired   in Red ", "invitation=expired&page=2")
    assert (view.name, view.query, view.list_name) == ("Expired in Red", "invitation=expired", "users")
    saved_views.save_view(actor, "users", "Everyone", "")
    saved_views.save_view(actor, "groups", "Everyone", "q=")  # the same name on another list

    panel = saved_views.panel(actor, "users", "page=4&invitation=expired")
    assert [(v.name, v.active) for v in panel.views] == [("Everyone", False),
                                                         ("Expired in Red", True)]
    assert panel.current == "invitation=expired" and panel.active.id == view.id
    assert [v.name for v in saved_views.panel(actor, "groups", "q=zz").views] == ["Everyone"]

    saved_views.rename_view(actor, view.id, " Lapsed ")
    assert db.session.get(SavedView, view.id).name == "Lapsed"
    saved_views.rename_view(actor, view.id, "Lapsed")  # unchanged: no event
    deleted = saved_views.delete_view(actor, view.id)
    assert deleted.name == "Lapsed" and db.session.get(SavedView, view.id) is None
    assert [a for a, _ in actions()] == ["saved_view.created"] * 3 + [
        "saved_view.renamed", "saved_view.deleted"]
    assert actions()[3][1] == {"view": view.id, "list": "users", "old": "Expired in Red",
                               "new": "Lapsed"}


@pytest.mark.parametrize("name, message", [
    ("", "Give the view a name."), ("   ", "Give the view a name."),
    ("x" * 61, "at most 60 characters"),
])
def test_names_are_trimmed_and_one_to_sixty_characters(app, account, name, message):
    with pytest.raises(ServiceError, match=message) as caught:
        saved_views.save_view(account.admin, "users", name, "q=a")
    assert caught.value.field == "name"
    assert saved_views.save_view(account.admin, "users", " " + "y" * 60 + " ", "").name == "y" * 60
    assert db.session.scalar(sa.select(sa.func.count(SavedView.id))) == 1


def test_names_are_unique_per_account_and_list_whatever_their_case(app, account):
    actor = account.admin
    first = saved_views.save_view(actor, "users", "Red", "group=1")
    other = saved_views.save_view(actor, "users", "Blue", "group=2")
    with pytest.raises(ServiceError, match="exists already") as caught:
        saved_views.save_view(actor, "users", " red ", "group=3")
    assert caught.value.field == "name" and caught.value.status == 422
    with pytest.raises(ServiceError, match="exists already"):
        saved_views.rename_view(actor, other.id, "RED")
    assert saved_views.rename_view(actor, first.id, "RED").name == "RED"  # its own name, recased
    beta = make_account("Beta")
    assert saved_views.save_view(beta.admin, "users", "Red", "").account_id == beta.id
    assert [a for a, _ in actions()].count("saved_view.renamed") == 1


def test_another_accounts_view_is_out_of_scope_and_unchanged(app, account):
    beta = make_account("Beta")
    theirs = saved_views.save_view(beta.admin, "users", "Beta only", "q=secret")
    for call in (lambda: saved_views.rename_view(account.admin, theirs.id, "Mine"),
                 lambda: saved_views.delete_view(account.admin, theirs.id),
                 lambda: saved_views.view_in_account(account.admin, "nonsense")):
        with pytest.raises(OutOfScope):
            call()
    db.session.rollback()
    assert db.session.get(SavedView, theirs.id).name == "Beta only"
    assert saved_views.panel(account.admin, "users", "q=secret").views == ()
