"""Delete (confirmation, result, blocked panel) and the Deleted users page with Restore."""
import re

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Membership
from tests.builders import delete_users
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user

HX = {"HX-Request": "true"}
DELETE = "/admin/participants/users/bulk/delete"
DELETED = "/admin/participants/users/deleted"
RESTORE = "/admin/participants/users/deleted/restore"


def is_deleted(membership_id: int) -> bool:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(Membership.deleted_at).where(Membership.id == membership_id)
    ) is not None


def test_delete_asks_through_the_one_confirmation_dialog(admin, account):
    """Issue 14: every destructive action asks one way (web.confirm's dialog in #confirm);
    Delete users had its own side panel."""
    ada = make_user(account, name="Ada Lovelace")
    driver = make_user(account, name="Dana Driver")
    make_taskstream(account, "Delivery", [("Deliver", make_group(account, "Drivers",
                                                                  [driver]).id)])
    for ids in ([ada.id], [driver.id]):  # a question, and a "cannot be deleted" with no question
        html = admin.post(DELETE, data={"ids": ids}, headers=HX).get_data(as_text=True)
        assert html.lstrip().startswith('<dialog class="confirm') and "data-modal" in html
        assert 'aria-labelledby="confirm-title"' in html and 'id="confirm-title"' in html
        assert "data-close-dialog" in html and "data-close-sidebar" not in html
    for page in (admin.get(f"/admin/participants/users/{ada.id}").get_data(as_text=True),
                 admin.get("/admin/participants/users/").get_data(as_text=True)):
        delete_button = re.search(r'hx-post="[^"]*/bulk/delete" hx-target="([^"]+)"', page)
        assert delete_button and delete_button.group(1) == "#confirm"


def test_delete_first_asks_naming_who_in_the_side_panel(admin, account):
    ada = make_user(account, name="Ada Lovelace")
    alan = make_user(account, name="Alan Turing")

    fragment = admin.post(DELETE, data={"ids": [ada.id, alan.id]}, headers=HX)

    assert fragment.status_code == 200
    html = fragment.get_data(as_text=True)
    assert "<html" not in html and 'id="rows"' not in html
    assert "Delete 2 users: Ada Lovelace, Alan Turing?" in html
    assert "Delete 2 users</button>" in html and 'name="confirmed" value="y"' in html
    assert not is_deleted(ada.id)
    page = admin.post(DELETE, data={"ids": [ada.id]}).get_data(as_text=True)
    assert "<html" in page and "Delete Ada Lovelace?" in page and "Alan Turing" in page


def test_deleting_all_matching_names_the_count_and_the_filter(admin, account):
    team = make_group(account, "Night shift")
    for n in range(3):
        make_user(account, name=f"Sam Smith {n}", group_ids=[team.id])
    make_user(account, name="Sam Smith elsewhere")

    html = admin.post(DELETE, data={"all_matching": "y", "q": "smith", "group": team.id},
                      headers=HX).get_data(as_text=True)

    assert "Delete all 3 users matching search \u201csmith\u201d, group \u201cNight shift\u201d?" in html
    assert 'name="all_matching" value="y"' in html


def test_a_confirmed_delete_refreshes_the_rows_flashes_and_closes_the_panel(admin, account):
    ada = make_user(account, name="Ada Lovelace")
    kept = make_user(account, name="Kept Person")

    response = admin.post(DELETE, data={"ids": [ada.id], "confirmed": "y"}, headers=HX)

    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "closeSidebar"
    html = response.get_data(as_text=True)
    assert "Deleted 1 user." in html and "Kept Person" in html and "Ada Lovelace" not in html
    assert 'id="sidebar"' not in html
    assert is_deleted(ada.id) and not is_deleted(kept.id)


def test_blocked_users_are_listed_with_the_reason_and_a_link_to_fix_it(admin, account):
    driver = make_user(account, name="Dana Driver")
    group = make_group(account, "Drivers", [driver])
    make_taskstream(account, "Delivery", [("Deliver", group.id)])
    other = make_user(account, name="Other Person")

    confirm = admin.post(DELETE, data={"ids": [driver.id, other.id, account.admin.id]},
                         headers=HX).get_data(as_text=True)
    assert "2 of them cannot be deleted" in confirm and "Delete 1 user</button>" in confirm
    assert "You cannot delete yourself" in confirm

    response = admin.post(DELETE, data={"ids": [driver.id, other.id, account.admin.id],
                                        "confirmed": "y"}, headers=HX)

    assert "HX-Trigger" not in response.headers
    html = response.get_data(as_text=True)
    assert 'id="confirm" hx-swap-oob="innerHTML"' in html and "<dialog" in html
    assert "Dana Driver" in html and "The only member of group \u201cDrivers\u201d" in html
    assert "Deleted 1 user." in html and "2 users could not be deleted" in html
    assert is_deleted(other.id) and not is_deleted(driver.id)


def test_the_last_admin_link_leads_to_the_users_list(app):
    from portal.services import deletion
    from portal.users.deletion_views import fix_links

    blocked = deletion.Blocked(1, "Ann Admin", "last_admin", "The last admin.")
    with app.test_request_context():
        assert fix_links(blocked) == [("Make another user an admin", "/admin/participants/users/")]


def test_without_htmx_a_delete_redirects_and_names_the_blocked_in_flashes(admin, account):
    ada = make_user(account, name="Ada Lovelace")

    response = admin.post(DELETE, data={"ids": [ada.id, account.admin.id], "confirmed": "y",
                                        "q": "a"})

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/participants/users/?q=a")
    html = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Deleted 1 user." in html and "was not deleted: You cannot delete yourself" in html


def test_user_details_offers_delete_and_lands_on_the_list_afterwards(admin, account):
    ada = make_user(account, name="Ada Lovelace")
    detail = admin.get(f"/admin/participants/users/{ada.id}").get_data(as_text=True)
    assert 'name="origin" value="detail"' in detail and ">Delete</button>" in detail

    confirm = admin.post(DELETE, data={"ids": [ada.id], "origin": "detail"},
                         headers=HX).get_data(as_text=True)
    assert "Delete Ada Lovelace?" in confirm and "hx-post" not in confirm.split("<form")[1]

    done = admin.post(DELETE, data={"ids": [ada.id], "origin": "detail", "confirmed": "y"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/participants/users/")
    assert is_deleted(ada.id)


def test_an_empty_or_unreadable_selection_is_explained(admin, account):
    empty = admin.post(DELETE, data={}, headers=HX).get_data(as_text=True)
    assert "Select at least one user first." in empty
    bad = admin.post(DELETE, data={"ids": ["x"], "confirmed": "y"}, headers=HX)
    assert bad.status_code == 200 and "could not be read" in bad.get_data(as_text=True)


def test_ids_of_another_account_are_never_deleted(admin, account):
    stranger = make_user(make_account(), name="Stranger Danger")

    html = admin.post(DELETE, data={"ids": [stranger.id], "confirmed": "y"},
                      headers=HX).get_data(as_text=True)

    assert "Nothing to delete" in html and "Stranger Danger" not in html
    assert not is_deleted(stranger.id)


def test_the_deleted_users_page_shows_who_when_by_whom_and_the_erase_date(admin, account):
    ada = make_user(account, name="Ada Lovelace", email="ada@example.com")
    make_user(account, name="Live Person")
    delete_users(account, ada)
    elsewhere = make_account()
    stranger = make_user(elsewhere, name="Stranger Danger")
    delete_users(elsewhere, stranger)

    page = admin.get(DELETED)

    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and "Deleted users" in html
    assert "Ada Lovelace" in html and "ada@example.com" in html
    assert account.admin.user.name in html
    erase = (db.session.get(Membership, ada.id).deleted_at).strftime("%Y-")
    assert erase in html and "Live Person" not in html and "Stranger Danger" not in html
    fragment = admin.get(DELETED, headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and "Ada Lovelace" in fragment
    users_list = admin.get("/admin/participants/users/").get_data(as_text=True)
    assert f'href="{DELETED}"' in users_list


def test_restore_one_or_the_checked_ones(admin, account):
    a, b, c = (make_user(account, name=f"Person {n}") for n in "ABC")
    delete_users(account, a, b, c)

    one = admin.post(RESTORE, data={"ids": [b.id, c.id], "one": a.id}, headers=HX)
    assert one.status_code == 200
    assert "Restored 1 user with the groups and role they had." in one.get_data(as_text=True)
    assert not is_deleted(a.id) and is_deleted(b.id)

    checked = admin.post(RESTORE, data={"ids": [b.id, c.id]})
    assert checked.status_code == 302 and checked.headers["Location"].endswith("/deleted?page=1")
    assert not is_deleted(b.id) and not is_deleted(c.id)


def test_restore_explains_what_it_could_not_do(admin, account):
    elsewhere = make_account()
    stranger = make_user(elsewhere, name="Stranger Danger")
    delete_users(elsewhere, stranger)

    html = admin.post(RESTORE, data={"ids": [stranger.id, 999999]},
                      headers=HX).get_data(as_text=True)

    assert "2 selected users are no longer recoverable" in html
    assert is_deleted(stranger.id)
    nothing = admin.post(RESTORE, data={}, headers=HX).get_data(as_text=True)
    assert "Select at least one user first." in nothing


def test_members_cannot_delete_or_restore(client, account):
    member = make_user(account, email="plain@example.com")
    other = make_user(account)
    client.login(member.user.email)

    assert client.post(DELETE, data={"ids": [other.id], "confirmed": "y"}).status_code == 403
    assert client.get(DELETED).status_code == 403
    assert client.post(RESTORE, data={"ids": [other.id]}).status_code == 403
    assert not is_deleted(other.id)
