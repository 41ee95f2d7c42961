"""The request sequences Microsoft Entra ID and Okta send, as their public SCIM docs show them.

Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint" (request and response
examples) and its known quirks: PATCH ``replace`` without a path, booleans as "False"/"True"
strings, capitalised ops, ``remove`` of members with a value list, a Microsoft schema URN on
groups. Okta: "SCIM 2.0 protocol reference" (lookup by userName with paging, POST with a
password, PUT of the whole user to deactivate, PATCH ``replace`` without a path).
"""
import sqlalchemy as sa

from portal.extensions import db
from portal.models import GroupMember
from portal.models import Membership
from portal.models import OutboxMessage
from tests.scim.conftest import GROUP
from tests.scim.conftest import PATCH
from tests.scim.conftest import USER

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MS_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def deleted(ident) -> bool:
    db.session.expire_all()
    return db.session.get(Membership, int(ident)).deleted_at is not None


def test_entra_id_user_lifecycle(scim):
    email = "Test_User_ab6490ee@testuser.com"
    # Entra first looks the user up by userName, then creates it.
    lookup = scim.get("Users", query={"filter": f'userName eq "{email}"'})
    assert lookup.get_json()["totalResults"] == 0 and lookup.get_json()["Resources"] == []
    created = scim.post("Users", {
        "schemas": [USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": email,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": email}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName",
                 "givenName": "givenName"},
        "roles": [],
        ENTERPRISE: {"department": "Logistics", "employeeNumber": "42"},
    })
    assert created.status_code == 201, created.get_json()
    user = created.get_json()
    path = f"Users/{user['id']}"
    assert user["userName"] == email.lower() and user["name"]["formatted"] == "givenName familyName"
    found = scim.get("Users", query={"filter": f'userName eq "{email}"'}).get_json()
    assert [r["id"] for r in found["Resources"]] == [user["id"]]

    # Update: multi-valued with a value path, and a sub-attribute.
    assert scim.request("PATCH", path, {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updated@testuser.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    ]}).status_code == 200
    # Update: single-valued, plus an enterprise attribute the portal does not keep.
    response = scim.patch(path, [
        {"op": "Replace", "path": "userName", "value": "renamed@testuser.com"},
        {"op": "Add", "path": f"{ENTERPRISE}:department", "value": "Sales"},
    ])
    assert response.status_code == 200, response.get_json()
    current = response.get_json()
    assert current["userName"] == "renamed@testuser.com"
    assert current["name"]["formatted"] == "givenName updatedFamilyName"

    # Disable: the boolean as a string, with a path and (newer Entra) without one.
    off = scim.patch(path, [{"op": "Replace", "path": "active", "value": "False"}])
    assert off.status_code == 200 and off.get_json()["active"] is False and deleted(user["id"])
    on = scim.patch(path, [{"op": "Replace", "value": {"active": "True"}}])
    assert on.get_json()["active"] is True and not deleted(user["id"])
    off = scim.patch(path, [{"op": "replace", "value": {"active": "False",
                                                        "displayName": "Gone Soon"}}])
    assert off.get_json()["active"] is False and off.get_json()["displayName"] == "Gone Soon"

    assert scim.delete(path).status_code == 204
    assert scim.get(path).status_code == 404


def test_entra_id_group_lifecycle(scim):
    members = [scim.create_user(f"m{n}@example.com")["id"] for n in range(3)]
    created = scim.post("Groups", {
        "schemas": [GROUP, MS_GROUP], "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName", "meta": {"resourceType": "Group"}})
    assert created.status_code == 201, created.get_json()
    group = created.get_json()
    path = f"Groups/{group['id']}"
    lean = scim.get(path, query={"excludedAttributes": "members"}).get_json()
    assert lean["displayName"] == "displayName" and "members" not in lean
    by_name = scim.get("Groups", query={"excludedAttributes": "members",
                                        "filter": 'displayName eq "displayName"'}).get_json()
    assert [g["id"] for g in by_name["Resources"]] == [group["id"]]

    assert scim.patch(path, [{"op": "Replace", "path": "displayName",
                              "value": "updatedDisplayName"}]).status_code == 200
    added = scim.patch(path, [{"op": "Add", "path": "members",
                               "value": [{"$ref": None, "value": m} for m in members]}])
    assert added.status_code == 200, added.get_json()
    removed = scim.patch(path, [{"op": "Remove", "path": "members",
                                 "value": [{"$ref": None, "value": members[0]}]}])
    assert removed.status_code == 200, removed.get_json()
    assert sorted(m["value"] for m in removed.get_json()["members"]) == sorted(members[1:])
    assert removed.get_json()["displayName"] == "updatedDisplayName"
    assert scim.delete(path).status_code == 204
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GroupMember)) == 0


def test_okta_user_lifecycle(scim):
    email = "test.user@okta.local"
    lookup = scim.get("Users", query={"filter": f'userName eq "{email}"', "startIndex": "1",
                                      "count": "100"})
    assert lookup.get_json()["totalResults"] == 0
    created = scim.post("Users", {
        "schemas": [USER], "userName": email,
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [], "password": "1mz050nq", "active": True,
    })
    assert created.status_code == 201, created.get_json()
    user = created.get_json()
    assert user["name"]["formatted"] == "Test User" and "password" not in user
    path = f"Users/{user['id']}"
    assert scim.get(path).get_json()["externalId"] == "00ujl29u0le5T6Aj10h7"
    # No invitation: this token is for single sign-on.
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))
                             .where(OutboxMessage.to_addr == email)) == 0

    # Okta deactivates (and reactivates) by PUTting the whole user.
    whole = {**user, "active": False}
    off = scim.put(path, whole)
    assert off.status_code == 200 and off.get_json()["active"] is False and deleted(user["id"])
    on = scim.put(path, {**whole, "active": True, "name": {"givenName": "Test",
                                                            "familyName": "Userson"}})
    assert on.get_json()["active"] is True and on.get_json()["name"]["formatted"] == \
        "Test Userson"
    # Newer Okta: PATCH replace without a path.
    off = scim.patch(path, [{"op": "replace", "value": {"active": False}}])
    assert off.get_json()["active"] is False and deleted(user["id"])


def test_okta_group_push(scim):
    user = scim.create_user("pushed@okta.local")
    created = scim.post("Groups", {"schemas": [GROUP], "displayName": "Test SCIMv2",
                                   "members": []})
    assert created.status_code == 201
    group = created.get_json()
    path = f"Groups/{group['id']}"
    renamed = scim.patch(path, [{"op": "replace", "value": {"id": group["id"],
                                                            "displayName": "Test SCIMv2 B"}}])
    assert renamed.get_json()["displayName"] == "Test SCIMv2 B"
    added = scim.patch(path, [{"op": "add", "path": "members",
                               "value": [{"value": user["id"], "display": user["userName"]}]}])
    assert [m["value"] for m in added.get_json()["members"]] == [user["id"]]
    removed = scim.patch(path, [{"op": "remove",
                                 "path": f'members[value eq "{user["id"]}"]'}])
    assert "members" not in removed.get_json()
    assert scim.delete(path).status_code == 204
