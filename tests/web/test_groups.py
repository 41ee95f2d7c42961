"""Groups tab, Add to Group and User Details' groups: page vs fragment, 422, 404, blocked rules."""
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Group
from portal.models import GroupMember
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user

HX = {"HX-Request": "true"}
BASE = "/admin/participants/groups"


def member_ids(group_id) -> set[int]:
    return set(db.session.scalars(
        sa.select(GroupMember.membership_id).where(GroupMember.group_id == group_id)))


def test_the_list_is_a_page_and_its_results_a_fragment(admin, account):
    ana = make_user(account)
    red = make_group(account, "Red", members=[ana])
    make_taskstream(account, "Delivery", [("Load", red.id)])
    page = admin.get(f"{BASE}/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html
    assert "New Group" in html and "Delivery" in html and 'name="ids"' in html
    fragment = admin.get(f"{BASE}/?q=re", headers=HX)
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in body and "Red" in body
    assert 'id="flashes"' in body and "HX-Request" in fragment.headers["Vary"]
    assert "No group matches" in admin.get(f"{BASE}/?q=zzz", headers=HX).get_data(as_text=True)


def test_new_group_opens_in_the_sidebar_and_creates_with_members(admin, account):
    ana = make_user(account, name="Ana Alpha")
    sidebar = admin.get(f"{BASE}/new", headers=HX).get_data(as_text=True)
    assert "New Group" in sidebar and "<html" not in sidebar and 'id="results"' not in sidebar
    found = admin.get(f"{BASE}/new?q=alpha", headers=HX).get_data(as_text=True)
    assert "Ana Alpha" in found and "New Group" not in found
    response = admin.post(f"{BASE}/new", data={"name": "Reviewers", "member_ids": [ana.id]},
                          headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "closeSidebar"
    assert 'id="results" class="rows" hx-swap-oob="true"' in body and "Reviewers" in body
    assert "Created the group" in body
    group = db.session.scalar(sa.select(Group).where(Group.name == "Reviewers"))
    assert member_ids(group.id) == {ana.id}


def test_new_group_without_htmx_redirects_to_the_group(admin, account):
    response = admin.post(f"{BASE}/new", data={"name": "Plain"})
    group = db.session.scalar(sa.select(Group).where(Group.name == "Plain"))
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"{BASE}/{group.id}")


def test_an_invalid_new_group_is_422_with_the_error_in_place_and_the_picks_kept(admin, account):
    ana = make_user(account, name="Ana Alpha")
    make_group(account, "Reviewers")
    for name, message in (("", "A group name is required."),
                          ("REVIEWERS", "already exists")):
        response = admin.post(f"{BASE}/new", data={"name": name, "member_ids": [ana.id]},
                              headers=HX)
        body = response.get_data(as_text=True)
        assert response.status_code == 422
        assert message in body and "Ana Alpha" in body and "checked" in body
    assert db.session.scalar(sa.select(sa.func.count(Group.id))) == 1


def test_the_picker_never_offers_other_accounts_people(admin, account):
    make_user(make_account(), name="Stranger Alpha")
    body = admin.get(f"{BASE}/new?q=stranger", headers=HX).get_data(as_text=True)
    assert "Stranger" not in body.replace("“stranger”", "")


def test_group_page_adds_and_removes_members_inline(admin, account):
    ana, bo = make_user(account, name="Ana Alpha"), make_user(account, name="Bo Beta")
    red = make_group(account, "Red", members=[ana])
    page = admin.get(f"{BASE}/{red.id}").get_data(as_text=True)
    assert "<html" in page and "Ana Alpha" in page and "Not assigned to any taskstream step" in page
    found = admin.get(f"{BASE}/{red.id}?q=b", headers=HX).get_data(as_text=True)
    assert "Bo Beta" in found
    member = admin.get(f"{BASE}/{red.id}?q=ana", headers=HX).get_data(as_text=True)
    assert "Ana Alpha" not in member  # already in the group
    added = admin.post(f"{BASE}/{red.id}/members", data={"member_ids": [bo.id]}, headers=HX)
    assert added.status_code == 200 and "Added 1 user to “Red”." in added.get_data(as_text=True)
    assert member_ids(red.id) == {ana.id, bo.id}
    removed = admin.post(f"{BASE}/{red.id}/members/remove", data={"member_ids": [ana.id], "confirmed": "y"},
                         headers=HX)
    assert "Removed 1 user from “Red”." in removed.get_data(as_text=True)
    assert member_ids(red.id) == {bo.id}


def test_adding_nobody_on_the_group_page_is_422(admin, account):
    red = make_group(account, "Red")
    response = admin.post(f"{BASE}/{red.id}/members", data={}, headers=HX)
    assert response.status_code == 422
    assert "Choose at least one user to add." in response.get_data(as_text=True)


def test_removing_the_only_member_of_an_assigned_group_shows_why_and_links_the_step(admin,
                                                                                      account):
    ana = make_user(account)
    red = make_group(account, "Red", members=[ana])
    stream = make_taskstream(account, "Delivery", [("Load", red.id)])
    response = admin.post(f"{BASE}/{red.id}/members/remove", data={"member_ids": [ana.id], "confirmed": "y"},
                          headers=HX)
    body = response.get_data(as_text=True)
    assert "only member" in body
    assert f"/admin/taskstreams/{stream.id}#step-{stream.steps[0].id}" in body
    assert member_ids(red.id) == {ana.id}


def test_renaming_a_group_answers_its_head_and_refuses_a_taken_name(admin, account):
    make_group(account, "Blue")
    red = make_group(account, "Red")
    ok = admin.post(f"{BASE}/{red.id}/rename", data={"name": "Crimson"}, headers=HX)
    assert ok.status_code == 200 and "<h1>Crimson</h1>" in ok.get_data(as_text=True)
    taken = admin.post(f"{BASE}/{red.id}/rename", data={"name": "blue"}, headers=HX)
    assert taken.status_code == 422 and "already exists" in taken.get_data(as_text=True)


def test_deleting_selected_groups_keeps_assigned_ones_with_a_link_to_the_step(admin, account):
    red = make_group(account, "Red")
    blue = make_group(account, "Blue")
    stream = make_taskstream(account, "Delivery", [("Load", red.id)])
    asked = admin.post(f"{BASE}/bulk/delete", data={"ids": [red.id, blue.id]}, headers=HX)
    body = asked.get_data(as_text=True)
    assert "Delete the group “Blue”?" in body and "1 other group cannot be deleted" in body
    assert db.session.scalar(sa.select(sa.func.count(Group.id))) == 2  # only asked
    response = admin.post(f"{BASE}/bulk/delete", headers=HX,
                          data={"ids": [red.id, blue.id], "confirmed": "y"})
    body = response.get_data(as_text=True)
    assert "Deleted the group “Blue”." in body
    assert "could not be deleted" in body
    assert f"/admin/taskstreams/{stream.id}#step-{stream.steps[0].id}" in body
    assert db.session.scalar(sa.select(Group.name)) == "Red"


def test_deleting_a_group_from_its_page_redirects_to_the_list(admin, account):
    red = make_group(account, "Red")
    asked = admin.post(f"{BASE}/{red.id}/delete")
    assert asked.status_code == 200 and "Delete the group “Red”?" in asked.get_data(as_text=True)
    response = admin.post(f"{BASE}/{red.id}/delete", data={"confirmed": "y"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"{BASE}/")
    assert db.session.scalar(sa.select(sa.func.count(Group.id))) == 0


def test_another_accounts_group_is_404_for_every_page_and_action(admin, account):
    other = make_account()
    theirs = make_group(other, "Theirs", members=[make_user(other)])
    before = member_ids(theirs.id)
    for method, url, data in (
        ("get", f"{BASE}/{theirs.id}", None),
        ("post", f"{BASE}/{theirs.id}/rename", {"name": "Mine"}),
        ("post", f"{BASE}/{theirs.id}/members", {"member_ids": [account.admin.id]}),
        ("post", f"{BASE}/{theirs.id}/members/remove", {"member_ids": list(before)}),
        ("post", f"{BASE}/{theirs.id}/delete", {}),
    ):
        response = getattr(admin, method)(url, data=data)
        assert response.status_code == 404, url
    db.session.expire_all()
    assert db.session.get(Group, theirs.id).name == "Theirs"
    assert member_ids(theirs.id) == before


def test_group_pages_need_the_csrf_token(admin, account):
    red = make_group(account, "Red")
    response = admin.post(f"{BASE}/{red.id}/rename", data={"name": "X"}, csrf=False)
    assert response.status_code == 400


# --- Add to Group from the Users tab and from User Details ----------------------------------


def test_add_to_group_opens_with_the_selection_and_adds_refreshing_the_users_rows(admin, account):
    ana, bo = make_user(account), make_user(account)
    red = make_group(account, "Red")
    panel = admin.get(f"/admin/participants/groups/add-to-group?ids={ana.id}&ids={bo.id}",
                      headers=HX)
    body = panel.get_data(as_text=True)
    assert panel.status_code == 200 and "Add 2 users to:" in body and "Red" in body
    response = admin.post(f"{BASE}/add-to-group",
                          data={"ids": [ana.id, bo.id], "group_ids": [red.id]}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "closeSidebar"
    assert 'id="rows" class="rows" hx-swap-oob="true"' in body
    assert "Added 2 users to “Red”." in body
    assert member_ids(red.id) == {ana.id, bo.id}


def test_add_to_group_can_create_a_group_on_the_spot_for_all_matching(admin, account):
    ana = make_user(account, name="Ana Alpha")
    make_user(account, name="Bo Beta")
    response = admin.post(f"{BASE}/add-to-group",
                          data={"all_matching": "y", "q": "alpha", "new_group": "Alphas"},
                          headers=HX)
    assert response.status_code == 200
    group = db.session.scalar(sa.select(Group).where(Group.name == "Alphas"))
    assert member_ids(group.id) == {ana.id}


def test_add_to_group_without_a_group_is_422_in_the_sidebar(admin, account):
    ana = make_user(account)
    response = admin.post(f"{BASE}/add-to-group", data={"ids": [ana.id]}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Choose at least one group" in body and "Add to Group" in body


def test_add_to_group_ignores_other_accounts_users(admin, account):
    stranger = make_user(make_account())
    red = make_group(account, "Red")
    admin.post(f"{BASE}/add-to-group", data={"ids": [stranger.id], "group_ids": [red.id]},
               headers=HX)
    assert member_ids(red.id) == set()


def test_user_details_show_participation_and_add_and_remove_groups(admin, account):
    ana = make_user(account)
    red = make_group(account, "Red", members=[ana])
    blue = make_group(account, "Blue")
    make_taskstream(account, "Delivery", [("Load", red.id)])
    page = admin.get(f"/admin/participants/users/{ana.id}").get_data(as_text=True)
    assert "Participates in" in page and "Delivery" in page and "via Red" in page
    added = admin.post(f"{BASE}/add-to-group",
                       data={"ids": [ana.id], "group_ids": [blue.id], "origin": "detail"},
                       headers=HX)
    body = added.get_data(as_text=True)
    assert added.headers["HX-Trigger"] == "closeSidebar"
    assert 'id="participates_in" class="card section" hx-swap-oob="true"' in body
    assert "Blue" in body
    removed = admin.post(f"{BASE}/member/{ana.id}/remove", data={"group_id": blue.id, "confirmed": "y"},
                         headers=HX)
    assert "Removed" in removed.get_data(as_text=True)
    assert member_ids(blue.id) == set()
    blocked = admin.post(f"{BASE}/member/{ana.id}/remove", data={"group_id": red.id, "confirmed": "y"},
                         headers=HX).get_data(as_text=True)
    assert "only member" in blocked and "#step-" in blocked
    assert member_ids(red.id) == {ana.id}


def test_removing_a_user_of_another_account_from_a_group_is_404(admin, account):
    other = make_account()
    stranger = make_user(other)
    theirs = make_group(other, "Theirs", members=[stranger])
    response = admin.post(f"{BASE}/member/{stranger.id}/remove", data={"group_id": theirs.id})
    assert response.status_code == 404
    assert member_ids(theirs.id) == {stranger.id}
