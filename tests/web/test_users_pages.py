"""The Users tab pages: list (page vs fragment, query in the URL), details (404 across accounts)."""
from tests.builders import age_invitations
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
    age_invitations()
    response = admin.post(
        "/admin/participants/users/bulk/resend-invite",
        data={"ids": [waiting.id, joined.id, stranger.id], "q": "person", "confirmed": "y"},
        headers=HX,
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Invite resent to 1 user; 1 skipped because they have already signed in." in html
    assert 'id="flashes"' in html and "Waiting Person" in html and "<html" not in html
    from portal.services import outbox

    outbox.deliver_due()
    # The first invitation's link was replaced before it went out: only the new one is sent.
    assert [m.subject for m in smtp.to(waiting.user.email)] == [
        f"You are invited to {account.name}"]
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


# --- New User ------------------------------------------------------------------------------

NEW = "/admin/participants/users/new"


def test_new_user_opens_in_the_sidebar_and_works_as_a_full_page(admin, account):
    fragment = admin.get(NEW, headers=HX).get_data(as_text=True)
    assert "New User" in fragment and "<html" not in fragment and 'name="email"' in fragment
    page = admin.get(NEW).get_data(as_text=True)
    assert "<html" in page and 'id="sidebar"' in page and "New User" in page


def test_a_valid_new_user_closes_the_sidebar_refreshes_the_list_and_flashes(admin, account, smtp):
    team = make_group(account, "Drivers")
    response = admin.post(
        NEW + "?q=grace",
        data={"name": "Grace Hopper", "email": "grace@example.com", "phone": "+1 415 555 2671",
              "groups": [team.id], "role": "member"},
        headers=HX,
    )
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "closeSidebar"
    html = response.get_data(as_text=True)
    assert 'id="rows"' in html and 'hx-swap-oob="true"' in html and "Grace Hopper" in html
    assert "Added Grace Hopper; an e-mail is on its way to grace@example.com." in html
    from portal.services import outbox

    outbox.deliver_due()
    [invite] = smtp.to("grace@example.com")
    assert invite.subject == f"You are invited to {account.name}"


def test_an_invalid_new_user_answers_422_with_the_errors_in_place(admin, account):
    make_user(account, email="taken@example.com")
    response = admin.post(NEW, data={"name": "", "email": "TAKEN@example.com",
                                     "phone": "nonsense", "role": "member"}, headers=HX)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "A name is required." in html
    assert 'value="TAKEN@example.com"' in html  # nothing typed is lost
    response = admin.post(NEW, data={"name": "X", "email": "taken@example.com",
                                     "phone": "nonsense", "role": "member"}, headers=HX)
    assert "not a phone number" in response.get_data(as_text=True)
    response = admin.post(NEW, data={"name": "X", "email": "taken@example.com", "role": "member"},
                          headers=HX)
    assert response.status_code == 422
    assert "already a user of this account" in response.get_data(as_text=True)


def test_a_group_of_another_account_in_new_user_is_refused(admin, account):
    foreign = make_group(make_account(), "Theirs")
    response = admin.post(NEW, data={"name": "Some One", "email": "one@example.com",
                                     "groups": [foreign.id], "role": "member"}, headers=HX)
    assert response.status_code == 422


def test_new_user_without_htmx_redirects_to_the_list(admin, account):
    response = admin.post(NEW + "?sort=email", data={"name": "Plain Form", "email": "plain@example.com",
                                                     "role": "admin"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/participants/users/?sort=email"


# --- User details actions ------------------------------------------------------------------


def detail_url(membership, action=""):
    return f"/admin/participants/users/{membership.id}" + (f"/{action}" if action else "")


def test_the_edit_form_loads_in_place_and_a_save_refreshes_the_sections(admin, account):
    member = make_user(account, name="Before Name")
    form = admin.get(detail_url(member, "edit"), headers=HX).get_data(as_text=True)
    assert "Edit profile" in form and f'name="version" type="hidden" value="{member.user.version}"' in form
    response = admin.post(detail_url(member, "edit"), headers=HX, data={
        "name": "After Name", "email": member.user.email, "phone": "", "version": member.user.version})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "After Name" in html and 'id="profile"' in html and "Saved the name." in html
    assert html.count('hx-swap-oob="true"') >= 4  # head, profile, activity, flashes
    # A top-level <title> in the answer: htmx makes it the tab's title (it said "Before Name").
    assert html.startswith("<title>After Name · Users · Participants Portal</title>")


def test_a_stale_save_is_refused_with_409_and_shows_the_current_values(admin, account):
    member = make_user(account, name="Start")
    stale = member.user.version
    admin.post(detail_url(member, "edit"), data={
        "name": "Other Admin's Change", "email": member.user.email, "version": stale})
    response = admin.post(detail_url(member, "edit"), headers=HX, data={
        "name": "My Change", "email": member.user.email, "version": stale})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "Someone else changed this user" in html
    assert 'value="Other Admin&#39;s Change"' in html or "value=\"Other Admin's Change\"" in html


def test_an_invalid_edit_answers_422(admin, account):
    member = make_user(account)
    response = admin.post(detail_url(member, "edit"), headers=HX, data={
        "name": "", "email": "nope", "version": member.user.version})
    assert response.status_code == 422
    assert "A name is required." in response.get_data(as_text=True)


def test_demoting_the_last_admin_answers_409(admin, account):
    response = admin.post(detail_url(account.admin, "role"), data={"role": "member"}, headers=HX)
    assert response.status_code == 409
    assert "last admin" in response.get_data(as_text=True)
    response = admin.post(detail_url(account.admin, "role"), data={"role": "member"})
    assert response.status_code == 409


def test_making_someone_an_admin_from_the_details_page(admin, account):
    member = make_user(account, name="Future Admin")
    response = admin.post(detail_url(member, "role"), data={"role": "admin"})
    assert response.status_code == 302
    assert "Future Admin is now an admin." in admin.get(response.headers["Location"]).get_data(
        as_text=True)


def test_reset_password_and_activity_report_flash_what_they_did(admin, account):
    member = make_user(account, email="person@example.com")
    html = admin.post(detail_url(member, "reset-password"), headers=HX).get_data(as_text=True)
    assert "A link to reset the password is on its way to person@example.com." in html
    html = admin.post(detail_url(member, "reset-password"), headers=HX).get_data(as_text=True)
    assert "was just sent" in html
    html = admin.post(detail_url(member, "activity-report"), data={"days": "30"},
                      headers=HX).get_data(as_text=True)
    assert "The activity report of the last 30 days" in html


def test_the_email_field_is_read_only_for_someone_also_in_another_organisation(admin, account):
    shared = make_user(make_account(), email="shared@example.com")
    here = make_user(account, email="shared@example.com")
    assert here.user_id == shared.user_id
    html = admin.get(detail_url(here, "edit")).get_data(as_text=True)
    assert "readonly" in html and "you don't" in html and "Reset Password" in html


def test_details_actions_on_another_accounts_user_are_404_and_change_nothing(admin, account):
    stranger = make_user(make_account(), name="Stranger")
    for action, data in (("edit", {"name": "X", "email": "x@example.com", "version": 1}),
                         ("role", {"role": "admin"}), ("reset-password", {}),
                         ("resend-invite", {}), ("activity-report", {"days": "7"})):
        assert admin.post(detail_url(stranger, action), data=data).status_code == 404, action
    assert admin.get(detail_url(stranger, "edit")).status_code == 404
    db_user = stranger.user
    from portal.extensions import db

    db.session.refresh(db_user)
    assert db_user.name == "Stranger"
    db.session.refresh(stranger)
    assert stranger.role == "member"


def test_markup_in_names_is_shown_as_text_everywhere(admin, account):
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>{{7*7}}'
    member = make_user(account, name=evil)
    for url, headers in (("/admin/participants/users/", {}), ("/admin/participants/users/?q=script", HX),
                         (detail_url(member), {})):
        html = admin.get(url, headers=headers).get_data(as_text=True)
        assert "<script>alert(1)" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "{{7*7}}" in html


def test_the_edit_form_ignores_fields_it_does_not_have(admin, account):
    member = make_user(account, name="Plain Member")
    other = make_account()
    admin.post(detail_url(member, "edit"), data={
        "name": "Plain Member", "email": member.user.email, "version": member.user.version,
        "role": "admin", "account_id": other.id, "password_hash": "x", "deleted_at": "2020-01-01",
        "id": 1})
    from portal.extensions import db

    db.session.refresh(member)
    db.session.refresh(member.user)
    assert (member.role, member.account_id, member.deleted_at) == ("member", account.id, None)
    assert member.user.password_hash != "x"
