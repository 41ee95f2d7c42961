"""SCIM Users: list, filter, get, create, replace, patch, delete — mapped through the services."""
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import User
from portal.services import deletion
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_user
from tests.scim.conftest import GROUP
from tests.scim.conftest import USER
from tests.scim.conftest import Provider
from tests.scim.conftest import assert_scim_error
from tests.scim.conftest import token_for
from tests.scim.conftest import user_body


def membership(ident) -> Membership:
    db.session.expire_all()
    return db.session.get(Membership, int(ident))


def test_create_maps_username_name_phone_and_external_id(scim, account):
    response = scim.post("Users", user_body(
        "Ann.Lee@Example.com", externalId="entra-0001",
        name={"givenName": "Ann", "familyName": "Lee"}, displayName="Ann L.",
        phoneNumbers=[{"value": "+44 20 7946 0958", "type": "mobile"}],
    ))

    assert response.status_code == 201
    user = response.get_json()
    assert response.headers["Location"] == user["meta"]["location"]
    assert response.headers["ETag"] == user["meta"]["version"]
    assert user["schemas"] == [USER]
    assert user["userName"] == "ann.lee@example.com"
    assert user["name"] == {"formatted": "Ann Lee"}
    assert user["displayName"] == "Ann Lee"
    assert user["phoneNumbers"] == [{"value": "+442079460958"}]
    assert user["externalId"] == "entra-0001"
    assert user["active"] is True
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["location"].endswith(f"/scim/v2/Users/{user['id']}")
    row = membership(user["id"])
    assert row.account_id == account.id and row.user.name == "Ann Lee"
    assert scim.get(f"Users/{user['id']}").get_json() == user


def test_created_people_get_the_invitation_only_when_the_token_says_so(app, account):
    quiet = Provider(app.test_client(), token_for(account, "SSO", send_invitations=False))
    loud = Provider(app.test_client(), token_for(account, "Mail", send_invitations=True))

    quiet.create_user("quiet@example.com")
    loud.create_user("loud@example.com")

    sent_to = set(db.session.scalars(sa.select(OutboxMessage.to_addr)
                                     .where(OutboxMessage.kind == "invite")))
    assert "loud@example.com" in sent_to and "quiet@example.com" not in sent_to


def test_a_person_of_another_account_is_invited_and_nothing_of_theirs_shows(scim, account):
    other = make_account("Elsewhere Ltd")
    known = make_user(other, name="Known Person", email="known@example.com",
                      group_ids=[make_group(other, "Secret group").id])

    created = scim.create_user("KNOWN@example.com", name={"formatted": "Someone Else"},
                               externalId="x-1")

    assert db.session.scalar(sa.select(sa.func.count(User.id))
                             .where(User.email == "known@example.com")) == 1
    assert membership(created["id"]).user_id == known.user_id
    # Until they accept an invitation, the account sees what its provider sent (DESIGN §1);
    # the person's own name stays theirs, and so does the other account's group.
    assert membership(created["id"]).invite_state == "invited"
    assert created["name"] == {"formatted": "Someone Else"}
    assert "groups" not in created
    listing = scim.get("Users").get_data(as_text=True)
    assert "Secret group" not in listing and "Known Person" not in listing
    assert db.session.get(User, known.user_id).name == "Known Person"


def test_creating_a_user_twice_is_a_uniqueness_conflict(scim):
    scim.create_user("twice@example.com")

    assert_scim_error(scim.post("Users", user_body("Twice@Example.com")), 409, "uniqueness")


def test_filters_that_providers_send(scim, account):
    ann = scim.create_user("ann@example.com", externalId="A-1", name={"formatted": "Ann Lee"},
                           phoneNumbers=[{"value": "+442079460958"}])
    bob = scim.create_user("bob@example.org", externalId="B-2", name={"formatted": "Bob Ray"})
    ids = lambda found: sorted(r["id"] for r in found)  # noqa: E731

    assert ids(scim.find('userName eq "ANN@example.com"')) == [ann["id"]]
    assert ids(scim.find('externalId eq "B-2"')) == [bob["id"]]
    assert scim.find('externalId eq "b-2"') == []  # externalId is case-exact
    assert ids(scim.find('emails.value eq "bob@example.org"')) == [bob["id"]]
    assert ids(scim.find('emails[type eq "work"].value eq "bob@example.org"')) == [bob["id"]]
    assert ids(scim.find('emails[type eq "work" and value eq "ann@example.com"]')) == [ann["id"]]
    assert ids(scim.find('displayName eq "bob ray"')) == [bob["id"]]
    assert ids(scim.find('userName eq "ann@example.com" or externalId eq "B-2"')) == \
        ids([ann, bob])
    assert ids(scim.find('userName sw "ann" and phoneNumbers pr')) == [ann["id"]]
    assert ids(scim.find('externalId pr')) == ids([ann, bob])
    assert ids(scim.find('not (externalId pr)')) == [str(account.admin.id)]
    assert ids(scim.find('userName co "example.org"')) == [bob["id"]]
    assert ids(scim.find(f'id eq "{ann["id"]}"')) == [ann["id"]]


def test_paging_with_start_index_and_count(scim, account):
    for n in range(5):
        scim.create_user(f"p{n}@example.com")
    every = scim.get("Users").get_json()
    assert every["totalResults"] == 6

    page = scim.get("Users", query={"startIndex": 2, "count": 2}).get_json()

    assert page["totalResults"] == 6 and page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [r["id"] for r in page["Resources"]] == [r["id"] for r in every["Resources"][1:3]]
    assert scim.get("Users", query={"count": 0}).get_json()["Resources"] == []
    assert scim.get("Users", query={"startIndex": 99}).get_json()["Resources"] == []
    assert scim.get("Users", query={"startIndex": -3}).get_json()["startIndex"] == 1


def test_attributes_and_excluded_attributes(scim):
    user = scim.create_user("sel@example.com", externalId="S")

    only = scim.get(f"Users/{user['id']}", query={"attributes": "userName"}).get_json()
    without = scim.get("Users", query={"excludedAttributes": "emails,name"}).get_json()

    assert set(only) == {"schemas", "id", "meta", "userName"}
    assert all("emails" not in r and "name" not in r and "userName" in r
               for r in without["Resources"])


def test_replace_changes_the_profile_and_a_stale_version_is_refused(scim):
    user = scim.create_user("put@example.com", name={"formatted": "Put Me"})
    body = user_body("put@example.com", name={"formatted": "Put Changed"}, externalId="P-9",
                     phoneNumbers=[{"value": "+33 1 42 68 53 00"}])

    response = scim.put(f"Users/{user['id']}", body, headers={"If-Match": user["meta"]["version"]})

    assert response.status_code == 200
    changed = response.get_json()
    assert changed["name"]["formatted"] == "Put Changed"
    assert changed["externalId"] == "P-9" and changed["phoneNumbers"] == [{"value": "+33142685300"}]
    assert changed["meta"]["version"] != user["meta"]["version"]
    stale = scim.put(f"Users/{user['id']}", body, headers={"If-Match": user["meta"]["version"]})
    assert_scim_error(stale, 412)


def test_patch_with_value_paths(scim):
    user = scim.create_user("old@example.com", name={"formatted": "Pat Old"})

    response = scim.patch(f"Users/{user['id']}", [
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@example.com"},
        {"op": "replace", "path": "name.familyName", "value": "New"},
        {"op": "add", "path": "externalId", "value": "E-7"},
    ])

    assert response.status_code == 200, response.get_json()
    patched = response.get_json()
    assert patched["userName"] == "new@example.com"
    assert patched["name"]["formatted"] == "Pat New"
    assert patched["externalId"] == "E-7"
    assert scim.patch(f"Users/{user['id']}", [{"op": "remove", "path": "externalId"}]) \
        .get_json().get("externalId") is None


def test_active_false_soft_deletes_and_active_true_restores(scim, account):
    user = scim.create_user("leaver@example.com")

    off = scim.patch(f"Users/{user['id']}", [{"op": "replace", "path": "active",
                                              "value": False}])

    assert off.status_code == 200 and off.get_json()["active"] is False
    assert membership(user["id"]).deleted_at is not None
    listed = deletion.list_deleted(account.admin)
    assert [row.membership.id for row in listed.rows] == [int(user["id"])]
    assert scim.find('userName eq "leaver@example.com"')[0]["active"] is False
    on = scim.patch(f"Users/{user['id']}", [{"op": "replace", "path": "active", "value": True}])
    assert on.get_json()["active"] is True
    assert membership(user["id"]).deleted_at is None


def test_a_deactivated_user_stays_current(scim):
    user = scim.create_user("dormant@example.com", name={"formatted": "Dormant One"})
    scim.patch(f"Users/{user['id']}", [{"op": "replace", "path": "active", "value": False}])

    response = scim.patch(f"Users/{user['id']}", [
        {"op": "replace", "path": "displayName", "value": "Dormant Two"}])

    assert response.status_code == 200
    assert response.get_json()["displayName"] == "Dormant Two"
    assert response.get_json()["active"] is False


def test_deactivating_the_last_admin_says_what_to_fix(scim, account):
    error = assert_scim_error(
        scim.patch(f"Users/{account.admin.id}",
                   [{"op": "replace", "path": "active", "value": False}]), 409)

    assert "admin" in error["detail"].lower()
    assert membership(account.admin.id).deleted_at is None


def test_delete_soft_deletes_then_404_and_a_new_post_brings_the_user_back(scim, account):
    user = scim.create_user("gone@example.com", externalId="G-1")

    assert scim.delete(f"Users/{user['id']}").status_code == 204

    assert_scim_error(scim.get(f"Users/{user['id']}"), 404)
    assert scim.find('userName eq "gone@example.com"') == []
    assert membership(user["id"]).deleted_at is not None  # restorable by an admin
    assert_scim_error(scim.delete(f"Users/{user['id']}"), 404)
    again = scim.create_user("gone@example.com", externalId="G-2")
    assert again["id"] == user["id"] and again["active"] is True
    assert again["externalId"] == "G-2"


def test_every_change_is_in_the_audit_trail_under_the_token_name(scim, account):
    user = scim.create_user("audited@example.com")
    scim.patch(f"Users/{user['id']}", [{"op": "replace", "path": "displayName",
                                        "value": "Audited Person"}])
    scim.delete(f"Users/{user['id']}")

    events = db.session.execute(
        sa.select(AuditEvent.action, AuditEvent.actor_label)
        .where(AuditEvent.account_id == account.id, AuditEvent.action.like("user.%"))
        .order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events][-3:] == ["user.added", "user.updated", "user.deleted"]
    assert {e.actor_label for e in events[-3:]} == {"SCIM token \u201cEntra ID\u201d"}


def test_reading_every_page_in_turn_matches_one_big_page(scim, account):
    from portal.services import scim as scim_service

    for n in range(7):
        scim.create_user(f"walk{n}@example.com")
    every = [r["id"] for r in scim.get("Users", query={"count": 100}).get_json()["Resources"]]

    walked, index = [], 1
    while index <= len(every):
        page = scim.get("Users", query={"startIndex": index, "count": 3}).get_json()
        walked += [r["id"] for r in page["Resources"]]
        index += 3
    scim_service._CONTINUATIONS.clear()  # another process: no continuation, the OFFSET
    cold = scim.get("Users", query={"startIndex": 4, "count": 3}).get_json()["Resources"]

    assert walked == every and [r["id"] for r in cold] == every[3:6]


def test_a_sync_pass_counts_on_its_first_and_last_pages_only(scim, account):
    """The middle pages of a pass carry its first page's totalResults instead of counting every
    user again (0.6 s a page at 100,000 users on PostgreSQL); the last page counts again, so
    the answer a provider stops on is exact."""
    for n in range(7):
        scim.create_user(f"pass{n}@example.com")
    statements: list[str] = []

    def note(_conn, _cursor, statement, *_args):
        statements.append(statement.lower())

    first = scim.get("Users", query={"startIndex": 1, "count": 3}).get_json()
    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        middle = scim.get("Users", query={"startIndex": 4, "count": 3}).get_json()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    scim.create_user("late@example.com")
    last = scim.get("Users", query={"startIndex": 7, "count": 3}).get_json()

    assert first["totalResults"] == middle["totalResults"] == 8
    assert not [s for s in statements if "count(" in s], statements
    assert last["totalResults"] == 9 and len(last["Resources"]) == 3


def test_a_lookup_by_user_name_or_external_id_counts_nothing(scim):
    """A provider's lookup (one user, or none) is its own totalResults: no count statement."""
    scim.create_user("look@example.com", externalId="L-1")
    statements: list[str] = []

    def note(_conn, _cursor, statement, *_args):
        statements.append(statement.lower())

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        found = scim.get("Users", query={"filter": 'userName eq "look@example.com"'}).get_json()
        missing = scim.get("Users", query={"filter": 'externalId eq "nobody"'}).get_json()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)

    assert found["totalResults"] == 1 and missing["totalResults"] == 0
    assert not [s for s in statements if "count(" in s], statements


def test_creating_a_user_reads_the_person_once_in_one_transaction(scim):
    """A provider creates 10,000 users one POST at a time: each reads its token (not the
    account), the person once (the person service's own check), and the user as SCIM shows it
    inside the same transaction, instead of a second transaction to read it back."""
    scim.create_user("first@example.com")
    statements: list[str] = []
    transactions: list[str] = []

    def note(_conn, _cursor, statement, *_args):
        statements.append(" ".join(statement.lower().split()))

    def began(_conn):
        transactions.append("begin")

    sa.event.listen(db.engine, "before_cursor_execute", note)
    sa.event.listen(db.engine, "begin", began)
    try:
        created = scim.create_user("once@example.com", externalId="O-1",
                                   name={"formatted": "Once Only"})
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
        sa.event.remove(db.engine, "begin", began)

    selects = [s for s in statements if s.startswith("select")]
    assert created["externalId"] == "O-1" and created["displayName"] == "Once Only"
    assert len(transactions) == 1, statements
    assert len([s for s in selects if "from users" in s]) == 1, selects
    assert not [s for s in selects if "accounts" in s or "invited_name from" in s], selects
    assert len(selects) == 3, selects  # the token, the person, the user as SCIM shows it


def test_a_list_page_reads_its_users_with_their_groups_in_one_statement(scim, account):
    """A sync pass is a thousand pages: each reads the token, the page's ids, and the users
    with their groups together (a round trip less than a separate read of the groups)."""
    ann = scim.create_user("ann.g@example.com")
    bob = scim.create_user("bob.g@example.com")
    scim.create_user("cy.g@example.com")
    zed = scim.post("Groups", {"schemas": [GROUP], "displayName": "Zed",
                               "members": [{"value": ann["id"]}, {"value": bob["id"]}]})
    abc = scim.post("Groups", {"schemas": [GROUP], "displayName": "abc",
                               "members": [{"value": ann["id"]}]})
    assert zed.status_code == abc.status_code == 201
    statements: list[str] = []

    def note(_conn, _cursor, statement, *_args):
        statements.append(" ".join(statement.lower().split()))

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        page = scim.get("Users", query={"count": 10}).get_json()
        one = scim.get(f"Users/{ann['id']}").get_json()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)

    groups = {r["userName"]: [g["display"] for g in r.get("groups", [])]
              for r in page["Resources"]}
    assert groups["ann.g@example.com"] == ["abc", "Zed"] == [g["display"] for g in one["groups"]]
    assert groups["bob.g@example.com"] == ["Zed"] and groups["cy.g@example.com"] == []
    page_reads = [s for s in statements if s.startswith("select")][:3]
    assert len([s for s in statements if s.startswith("select")]) == 6, statements
    assert "group_members" in page_reads[2] and "scim_user_links" in page_reads[2], page_reads
