"""Saved views beside the tabs of Users and Groups (issue 15, item 5): Save view, the active
view marked (also after an htmx query change), a plain link to open one, Rename, Delete
through the one confirmation; refused names answer 422 with what was typed kept."""
import re

import sqlalchemy as sa

from portal.extensions import db
from portal.models import SavedView
from tests.builders import make_group

HX = {"HX-Request": "true"}
USERS = "/admin/participants/users"
GROUPS = "/admin/participants/groups"
VIEWS = "/admin/participants/views"


def views() -> list[tuple[str, str, str]]:
    db.session.commit()
    return [(v.list_name, v.name, v.query) for v in db.session.scalars(
        sa.select(SavedView).order_by(SavedView.id))]


def active(html: str) -> list[str]:
    return re.findall(r'<li class="view-link active">\s*<a href="[^"]*" aria-current="true">([^<]+)',
                      html)


def test_save_view_on_users_is_listed_beside_the_tabs_and_marked_when_its_query_is_shown(
        admin, account):
    red = make_group(account, "Red")
    saved = admin.post(f"{VIEWS}/users/save", headers=HX, data={
        "name": " Red, expired ", "current": f"group={red.id}&invitation=expired&page=3"})
    html = saved.get_data(as_text=True)
    assert saved.status_code == 200 and "<html" not in html
    assert "Saved the view “Red, expired”." in html and 'id="flashes"' in html
    assert active(html) == ["Red, expired"]
    assert views() == [("users", "Red, expired", f"group={red.id}&invitation=expired")]
    # Opening it is a plain link to the list with the query; that page marks it.
    link = f"{USERS}/?group={red.id}&amp;invitation=expired"
    assert f'href="{link}"' in html
    page = admin.get(f"{USERS}/?invitation=expired&group={red.id}").get_data(as_text=True)
    assert active(page) == ["Red, expired"]
    assert page.index('class="tabs"') < page.index('id="saved-views"') < page.index('id="filters"')
    # Another query (htmx, as the search form asks): the block comes out of band, unmarked.
    other = admin.get(f"{USERS}/?q=ana", headers=HX).get_data(as_text=True)
    assert 'id="saved-views" class="saved-views" hx-swap-oob="true"' in other
    assert active(other) == [] and "Red, expired" in other
    assert active(admin.get(f"{USERS}/?group={red.id}&invitation=expired",
                            headers=HX).get_data(as_text=True)) == ["Red, expired"]
    # A plain POST is sent back to the list with the saved query.
    plain = admin.post(f"{VIEWS}/users/save", data={"name": "Ana", "current": "q=ana&page=2"})
    assert plain.status_code == 302 and plain.headers["Location"].endswith(f"{USERS}/?q=ana")


def test_groups_have_views_of_their_own(admin, account):
    make_group(account, "Red")
    admin.post(f"{VIEWS}/groups/save", headers=HX, data={"name": "Reds", "current": "q=red"})
    page = admin.get(f"{GROUPS}/?q=red").get_data(as_text=True)
    assert active(page) == ["Reds"] and f'href="{GROUPS}/?q=red"' in page
    fragment = admin.get(f"{GROUPS}/?q=blue", headers=HX).get_data(as_text=True)
    assert 'hx-swap-oob="true"' in fragment and active(fragment) == []
    assert "Reds" not in admin.get(f"{USERS}/").get_data(as_text=True)


def test_refused_names_answer_422_with_the_name_kept_and_never_5xx(admin, account):
    admin.post(f"{VIEWS}/users/save", headers=HX, data={"name": "Red", "current": "q=r"})
    for name, message in (("red", "A view named “red” exists already"),
                          ("   ", "Give the view a name."), ("x" * 61, "at most 60 characters"),
                          ("a\u202eb", "control characters")):
        for headers in (HX, {}):
            answer = admin.post(f"{VIEWS}/users/save", headers=headers,
                                data={"name": name, "current": "q=other"})
            html = answer.get_data(as_text=True)
            assert answer.status_code == 422, (name, answer.status_code)
            assert message in html, name
            assert 'aria-invalid="true"' in html and "<details class=\"menu dropdown save-view\" open" in html
            if name.strip() and "\u202e" not in name:
                assert f'value="{name}"' in html
    assert views() == [("users", "Red", "q=r")]
    assert admin.post(f"{VIEWS}/teams/save", data={"name": "x"}).status_code == 404


def test_rename_and_delete_through_the_one_confirmation(admin, account):
    admin.post(f"{VIEWS}/users/save", headers=HX, data={"name": "Red", "current": "q=r"})
    admin.post(f"{VIEWS}/users/save", headers=HX, data={"name": "Blue", "current": "q=b"})
    red, blue = db.session.scalars(sa.select(SavedView.id).order_by(SavedView.id)).all()
    taken = admin.post(f"{VIEWS}/{blue}/rename", headers=HX, data={"name": "RED", "current": "q=b"})
    html = taken.get_data(as_text=True)
    assert taken.status_code == 422 and "exists already" in html and 'value="RED"' in html
    assert re.search(r'<details class="menu dropdown view-menu" open>\s*<summary aria-label="Rename'
                     r' or delete the view Blue"', html)
    renamed = admin.post(f"{VIEWS}/{blue}/rename", headers=HX,
                         data={"name": " Navy ", "current": "q=b"}).get_data(as_text=True)
    assert "Renamed the view “Blue” to “Navy”." in renamed and active(renamed) == ["Navy"]
    question = admin.post(f"{VIEWS}/{red}/delete", headers=HX, data={"current": "q=b"})
    dialog = question.get_data(as_text=True)
    assert question.status_code == 200 and "<dialog" in dialog and "Delete the view “Red”?" in dialog
    assert 'hx-target="#saved-views"' in dialog and 'name="current" value="q=b"' in dialog
    assert len(views()) == 2  # nothing changed until the question is answered
    done = admin.post(f"{VIEWS}/{red}/delete", headers=HX,
                      data={"current": "q=b", "confirmed": "y"}).get_data(as_text=True)
    assert "Deleted the view “Red”." in done and active(done) == ["Navy"]
    assert views() == [("users", "Navy", "q=b")]
    plain = admin.post(f"{VIEWS}/{blue}/delete", data={"current": "q=b"})
    assert plain.status_code == 200 and "<html" in plain.get_data(as_text=True)  # the page asks
    gone = admin.post(f"{VIEWS}/{blue}/delete", data={"current": "q=b", "confirmed": "y"})
    assert gone.status_code == 302 and gone.headers["Location"].endswith(f"{USERS}/?q=b")
    assert views() == []
    assert admin.post(f"{VIEWS}/{blue}/rename", data={"name": "x"}).status_code == 404
