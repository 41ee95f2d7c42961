"""SCIM tokens (wrong/revoked → 401), isolation between accounts (→ 404), and bad input
(→ SCIM 400, never 5xx)."""
import json

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import ScimToken
from portal.services import accounts
from portal.services import scim_tokens
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_user
from tests.scim.conftest import GROUP
from tests.scim.conftest import Provider
from tests.scim.conftest import assert_scim_error
from tests.scim.conftest import token_for
from tests.scim.conftest import user_body


@pytest.mark.parametrize("header", [
    None, "Bearer", "Bearer scim_not-a-token", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 5000,
])
def test_missing_or_wrong_tokens_get_401(scim, header):
    headers = {"Authorization": header} if header else {}
    response = scim.client.get("/scim/v2/Users", headers=headers)

    assert_scim_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_gets_401_and_the_others_keep_working(app, account, scim):
    other = token_for(account, "Okta")
    token = db.session.scalar(sa.select(ScimToken).where(ScimToken.name == "Entra ID"))

    scim_tokens.revoke_token(accounts.Operator(account.id), token.id)

    assert_scim_error(scim.get("Users"), 401)
    assert scim.get("Users", token=other).status_code == 200


def test_tokens_are_stored_hashed_and_record_their_last_use(scim):
    assert scim.get("ServiceProviderConfig").status_code == 200

    token = db.session.scalar(sa.select(ScimToken))
    assert scim.token not in token.token_hash and len(token.token_hash) == 64
    assert token.last_used_at is not None


def test_another_accounts_token_and_ids_get_404(app, account, scim):
    mine = scim.create_user("mine@example.com")
    group = scim.post("Groups", {"schemas": [GROUP], "displayName": "Mine"}).get_json()
    theirs = Provider(app.test_client(), token_for(make_account("Other Org")))

    for path in (f"Users/{mine['id']}", f"Groups/{group['id']}"):
        assert_scim_error(theirs.get(path), 404)
        assert_scim_error(theirs.put(path, user_body("x@example.com")), 404)
        assert_scim_error(theirs.patch(path, [{"op": "replace", "path": "externalId",
                                                "value": "stolen"}]), 404)
        assert_scim_error(theirs.delete(path), 404)
    assert theirs.find('userName eq "mine@example.com"') == []
    assert theirs.find('displayName eq "Mine"', "Groups") == []
    assert scim.get(f"Users/{mine['id']}").get_json() == mine


def test_members_of_another_account_cannot_be_added_to_a_group(app, account, scim):
    stranger = make_user(make_account("Other Org"))
    group = scim.post("Groups", {"schemas": [GROUP], "displayName": "Mine"}).get_json()

    response = scim.patch(f"Groups/{group['id']}", [
        {"op": "add", "path": "members", "value": [{"value": str(stranger.id)}]}])

    assert_scim_error(response, 400, "invalidValue")


@pytest.mark.parametrize("raw", ["{nope", "", "[1, 2]", '"text"', "\xff\xfe", "null"])
def test_malformed_bodies_are_invalid_syntax(scim, raw):
    assert_scim_error(scim.request("POST", "Users", raw=raw), 400, "invalidSyntax")


def test_unknown_attributes_are_refused(scim):
    error = assert_scim_error(scim.post("Users", user_body("u@example.com", favouriteColour="red")),
                              400, "invalidSyntax")
    assert "favouriteColour" in error["detail"]


@pytest.mark.parametrize("body, fragment", [
    (user_body("not an address"), "e-mail"),
    (user_body("p@example.com", phoneNumbers=[{"value": "12"}]), "phone"),
    (user_body("n@example.com", name={"formatted": "bad\x07name"}), "control"),
    (user_body("a@example.com", active="maybe"), "active"),
    ({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}, "userName"),
])
def test_invalid_values_say_what_is_wrong(scim, body, fragment):
    error = assert_scim_error(scim.post("Users", body), 400)
    assert fragment.lower() in error["detail"].lower()


@pytest.mark.parametrize("scim_filter", [
    'userName eq', 'userName eq "a" and', '(userName eq "a"', 'userName xx "a"',
    'title eq "boss"', 'urn:x:y:title eq "a"', 'active eq "yes"', 'userName eq 5',
    'meta.created gt "yesterday"', 'emails[value eq "a"', "x" * 3000, 'userName eq "\\q"',
    'groups co "1"', 'name.givenName eq "a"',
])
def test_invalid_filters_are_invalid_filter(scim, scim_filter):
    assert_scim_error(scim.get("Users", query={"filter": scim_filter}), 400, "invalidFilter")
    assert_scim_error(scim.get("Groups", query={"filter": scim_filter}), 400, "invalidFilter")


@pytest.mark.parametrize("query", [{"count": "ten"}, {"startIndex": "1.5"}])
def test_invalid_paging_is_a_400(scim, query):
    assert_scim_error(scim.get("Users", query=query), 400, "invalidValue")


@pytest.mark.parametrize("operations", [
    [{"op": "replace", "path": "nosuch", "value": 1}],
    [{"op": "explode", "path": "displayName", "value": "x"}],
    [{"op": "replace", "path": 'emails[type eq', "value": "x"}],
    [{"op": "replace", "path": "groups", "value": [{"value": "1"}]}],
    [{"op": "replace", "value": "not an object"}],
    "not a list",
])
def test_invalid_patches_are_400(scim, operations):
    user = scim.create_user("patchme@example.com")
    response = scim.request("PATCH", f"Users/{user['id']}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
    assert_scim_error(response, 400)


def test_unknown_routes_and_methods_answer_scim_errors(scim):
    assert_scim_error(scim.get("Nothing"), 404)
    assert_scim_error(scim.request("POST", "ServiceProviderConfig", {}), 405)
    assert_scim_error(scim.get("Users/not-a-number"), 404)
    assert_scim_error(scim.get("Users/99999999999999999999"), 404)


def test_scim_needs_no_csrf_token_and_ignores_the_session_cookie(app, account, admin):
    # A signed-in admin's cookie is no credential for SCIM.
    assert_scim_error(admin.get("/scim/v2/Users"), 401)
    response = admin.post("/scim/v2/Users", data=json.dumps(user_body("c@example.com")),
                          headers={"Content-Type": "application/scim+json"}, csrf=False)
    assert_scim_error(response, 401)


def test_group_name_clash_is_uniqueness(scim, account):
    make_group(account, "Drivers")

    response = scim.post("Groups", {"schemas": [GROUP], "displayName": "drivers"})

    assert_scim_error(response, 409, "uniqueness")
