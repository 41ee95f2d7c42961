"""Taskstreams pages: page vs fragment, 422, redirects, 404 across accounts."""
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Taskstream
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_taskstream

HX = {"HX-Request": "true"}
BASE = "/admin/taskstreams"


def steps_of(stream_id) -> list[tuple[str, str | None]]:
    db.session.expire_all()
    stream = db.session.get(Taskstream, stream_id)
    return [(s.name, s.group.name if s.group else None) for s in stream.steps]


def test_the_menu_links_taskstreams_and_the_list_shows_steps_and_groups(admin, account):
    red = make_group(account, "Red")
    make_taskstream(account, "Delivery", [("Load", red.id), ("Drive", None)])
    page = admin.get(f"{BASE}/").get_data(as_text=True)
    assert 'href="/admin/taskstreams/"' in page
    assert "Delivery" in page and "Load" in page and "Red" in page and "no group" in page


def test_creating_a_taskstream_opens_it_and_an_empty_name_is_422(admin, account):
    response = admin.post(f"{BASE}/", data={"name": "Inspection"})
    stream = db.session.scalar(sa.select(Taskstream))
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"{BASE}/{stream.id}")
    bad = admin.post(f"{BASE}/", data={"name": "  "})
    assert bad.status_code == 422 and "A taskstream name is required." in bad.get_data(as_text=True)


def test_steps_are_added_assigned_moved_and_removed_inline(admin, account):
    red = make_group(account, "Red")
    stream = make_taskstream(account, "S", [("A", None)])
    sid = stream.id
    added = admin.post(f"{BASE}/{sid}/steps", data={"name": "B", "group_id": red.id}, headers=HX)
    body = added.get_data(as_text=True)
    assert added.status_code == 200 and "<html" not in body and "Added the step “B”." in body
    assert steps_of(sid) == [("A", None), ("B", "Red")]
    a, b = db.session.get(Taskstream, sid).steps
    admin.post(f"{BASE}/{sid}/steps/{b.id}/move", data={"direction": "up"}, headers=HX)
    assert steps_of(sid) == [("B", "Red"), ("A", None)]
    assigned = admin.post(f"{BASE}/{sid}/steps/{a.id}/assign", data={"group_id": red.id},
                          headers=HX)
    assert "“A” is now assigned to “Red”." in assigned.get_data(as_text=True)
    asked = admin.post(f"{BASE}/{sid}/steps/{b.id}/remove", headers=HX)
    assert "Remove the step “B” from “S”?" in asked.get_data(as_text=True)
    assert len(steps_of(sid)) == 2  # only asked
    removed = admin.post(f"{BASE}/{sid}/steps/{b.id}/remove", data={"confirmed": "y"}, headers=HX)
    assert steps_of(sid) == [("A", "Red")]
    # The head's step count comes along out of band.
    assert "1 step ·" in removed.get_data(as_text=True)


def test_a_step_without_a_name_is_422_with_the_form_in_place(admin, account):
    stream = make_taskstream(account, "S", [])
    response = admin.post(f"{BASE}/{stream.id}/steps", data={"name": ""}, headers=HX)
    assert response.status_code == 422
    assert "A step name is required." in response.get_data(as_text=True)


def test_renaming_and_deleting_a_taskstream(admin, account):
    stream = make_taskstream(account, "S", [])
    renamed = admin.post(f"{BASE}/{stream.id}/rename", data={"name": "T"}, headers=HX)
    assert "<h1>T</h1>" in renamed.get_data(as_text=True)
    asked = admin.post(f"{BASE}/{stream.id}/delete")
    assert "Delete the taskstream “T”?" in asked.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Taskstream.id))) == 1  # only asked
    deleted = admin.post(f"{BASE}/{stream.id}/delete", data={"confirmed": "y"})
    assert deleted.status_code == 302 and deleted.headers["Location"].endswith(f"{BASE}/")
    assert db.session.scalar(sa.select(sa.func.count(Taskstream.id))) == 0


def test_the_detail_page_without_htmx_and_after_a_post(admin, account):
    stream = make_taskstream(account, "S", [("A", None)])
    page = admin.get(f"{BASE}/{stream.id}").get_data(as_text=True)
    assert "<html" in page and f'id="step-{stream.steps[0].id}"' in page
    response = admin.post(f"{BASE}/{stream.id}/steps", data={"name": "B"})
    assert response.status_code == 302


def test_another_accounts_taskstream_is_404_everywhere(admin, account):
    theirs = make_taskstream(make_account(), "Theirs", [("A", None)])
    step_id = theirs.steps[0].id
    for method, url, data in (
        ("get", f"{BASE}/{theirs.id}", None),
        ("post", f"{BASE}/{theirs.id}/rename", {"name": "Mine"}),
        ("post", f"{BASE}/{theirs.id}/delete", {}),
        ("post", f"{BASE}/{theirs.id}/steps", {"name": "B"}),
        ("post", f"{BASE}/{theirs.id}/steps/{step_id}/move", {"direction": "down"}),
        ("post", f"{BASE}/{theirs.id}/steps/{step_id}/remove", {}),
        ("post", f"{BASE}/{theirs.id}/steps/{step_id}/assign", {"group_id": ""}),
    ):
        assert getattr(admin, method)(url, data=data).status_code == 404, url
    assert steps_of(theirs.id) == [("A", None)]
