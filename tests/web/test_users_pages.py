"""The Users tab pages: list (page vs fragment, query in the URL), details (404 across accounts)."""
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_user

HX = {"HX-Request": "true"}


def test_the_list_renders_the_full_page_and_htmx_gets_only_the_rows(admin, account):
    make_user(account, name="Ada Lovelace", email="ada@example.com")
    page = admin.get("/admin/participants/users/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<html" in html and 'id="filters"' in html and "Ada Lovelace" in html
    fragment = admin.get("/admin/participants/users/?q=ada", headers=HX)
    assert fragment.status_code == 200
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and 'id="filters"' not in body
    assert "Ada Lovelace" in body and 'id="flashes"' in body and "hx-swap-oob" in body
    assert "HX-Request" in fragment.headers["Vary"]


def test_search_group_and_state_filters_narrow_the_list(admin, account):
    team = make_group(account, "Night shift")
    make_user(account, name="Grace Hopper", email="grace@example.com", group_ids=[team.id])
    make_user(account, name="Alan Turing", email="alan@example.com", password=None)
    html = admin.get("/admin/participants/users/?q=HOPPER").get_data(as_text=True)
    assert "Grace Hopper" in html and "Alan Turing" not in html
    html = admin.get(f"/admin/participants/users/?group={team.id}").get_data(as_text=True)
    assert "Grace Hopper" in html and "Alan Turing" not in html
    html = admin.get("/admin/participants/users/?state=invited").get_data(as_text=True)
    assert "Alan Turing" in html and "Grace Hopper" not in html
    html = admin.get("/admin/participants/users/?q=nobody-like-this").get_data(as_text=True)
    assert "No users match this search." in html


def test_sort_and_page_links_keep_the_query(admin, account):
    for n in range(55):
        make_user(account, name=f"Person {n:02}", email=f"p{n:02}@example.com", password=None)
    html = admin.get("/admin/participants/users/?q=person&sort=-email").get_data(as_text=True)
    assert "p54@example.com" in html and "p00@example.com" not in html
    assert 'href="/admin/participants/users/?q=person&amp;sort=-email&amp;page=2"' in html
    html = admin.get("/admin/participants/users/?q=person&sort=-email&page=2").get_data(as_text=True)
    assert "p00@example.com" in html and "51–55 of 55" in html


def test_nonsense_query_values_fall_back_to_defaults(admin, account):
    response = admin.get("/admin/participants/users/?group=x&state=bogus&sort=evil&page=-3")
    assert response.status_code == 200
    assert account.admin.user.email in response.get_data(as_text=True)


def test_user_details_show_the_profile_and_another_accounts_user_is_404(admin, account):
    member = make_user(account, name="Katherine Johnson", email="kj@example.com")
    response = admin.get(f"/admin/participants/users/{member.id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Katherine Johnson" in html and 'id="profile"' in html and 'id="activity"' in html
    stranger = make_user(make_account(), name="Someone Else")
    missing = admin.get(f"/admin/participants/users/{stranger.id}")
    assert missing.status_code == 404
    assert "Someone Else" not in missing.get_data(as_text=True)
    assert admin.get("/admin/participants/users/999999").status_code == 404


def test_members_cannot_open_the_users_tab(client, account):
    member = make_user(account, email="plain@example.com")
    client.login(member.user.email)
    assert client.get("/admin/participants/users/").status_code == 403


def test_resend_invite_acts_on_checked_ids_and_ignores_another_accounts(admin, account, smtp):
    waiting = make_user(account, name="Waiting Person", password=None)
    joined = make_user(account, name="Joined Person")
    stranger = make_user(make_account(), name="Stranger", password=None)
    response = admin.post(
        "/admin/participants/users/bulk/resend-invite",
        data={"ids": [waiting.id, joined.id, stranger.id], "q": "person"},
        headers=HX,
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Invite resent to 1 user; 1 skipped because they have already signed in." in html
    assert 'id="flashes"' in html and "Waiting Person" in html and "<html" not in html
    from portal.services import outbox

    outbox.deliver_due()
    assert [m.subject for m in smtp.to(waiting.user.email)] == [
        f"You are invited to {account.name}", f"You are invited to {account.name}"]
    # Only the stranger's original invitation: the foreign id was ignored.
    assert len(smtp.to(stranger.user.email)) == 1


def test_a_bulk_action_on_an_empty_selection_says_so(admin, account):
    response = admin.post("/admin/participants/users/bulk/resend-invite", data={}, headers=HX)
    assert response.status_code == 200
    assert "Select at least one user first." in response.get_data(as_text=True)


def test_a_bulk_action_without_htmx_redirects_back_to_the_same_view(admin, account):
    waiting = make_user(account, password=None)
    response = admin.post(
        "/admin/participants/users/bulk/resend-invite",
        data={"ids": [waiting.id], "q": "user", "sort": "-email"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/participants/users/?q=user&sort=-email"


def test_a_bulk_post_without_csrf_token_is_refused(admin, account):
    waiting = make_user(account, password=None)
    response = admin.post("/admin/participants/users/bulk/resend-invite",
                          data={"ids": [waiting.id]}, csrf=False)
    assert response.status_code == 400
