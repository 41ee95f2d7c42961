"""SCIM Groups: the account's groups and their members, through the groups service."""
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Group
from portal.models import GroupMember
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user
from tests.scim.conftest import GROUP
from tests.scim.conftest import assert_scim_error


def members(group_id) -> set[int]:
    db.session.expire_all()
    return set(db.session.scalars(sa.select(GroupMember.membership_id)
                                  .where(GroupMember.group_id == int(group_id))))


def create(scim, name, *member_ids, **extra):
    response = scim.post("Groups", {"schemas": [GROUP], "displayName": name, **extra,
                                    "members": [{"value": str(i)} for i in member_ids]})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_get_and_filter_groups(scim, account):
    ann, bob = make_user(account, name="Ann"), make_user(account, name="Bob")

    group = create(scim, "Drivers", ann.id, bob.id, externalId="grp-1")

    assert group["displayName"] == "Drivers" and group["externalId"] == "grp-1"
    assert sorted(m["value"] for m in group["members"]) == sorted([str(ann.id), str(bob.id)])
    assert {m["type"] for m in group["members"]} == {"User"}
    assert group["members"][0]["$ref"].endswith(f"/scim/v2/Users/{group['members'][0]['value']}")
    assert group["meta"]["location"].endswith(f"/scim/v2/Groups/{group['id']}")
    assert scim.get(f"Groups/{group['id']}").get_json() == group
    assert [g["id"] for g in scim.find('displayName eq "drivers"', "Groups")] == [group["id"]]
    assert [g["id"] for g in scim.find('externalId eq "grp-1"', "Groups")] == [group["id"]]
    assert [g["id"] for g in scim.find(f'members[value eq "{ann.id}"]', "Groups")] == \
        [group["id"]]
    lean = scim.get(f"Groups/{group['id']}", query={"excludedAttributes": "members"}).get_json()
    assert "members" not in lean and lean["displayName"] == "Drivers"
    user = scim.get(f"Users/{ann.id}").get_json()
    assert user["groups"] == [{"value": group["id"], "$ref": group["meta"]["location"],
                               "display": "Drivers"}]


def test_patch_adds_and_removes_members_the_ways_providers_send(scim, account):
    people = [make_user(account) for _ in range(5)]
    ids = [p.id for p in people]
    group = create(scim, "Crew", ids[0])
    path = f"Groups/{group['id']}"

    # Okta and Entra: add a list of members.
    assert scim.patch(path, [{"op": "add", "path": "members",
                              "value": [{"value": str(i)} for i in ids[1:4]]}]).status_code == 200
    assert members(group["id"]) == set(ids[:4])
    # Okta: remove with a value filter.
    scim.patch(path, [{"op": "remove", "path": f'members[value eq "{ids[0]}"]'}])
    assert members(group["id"]) == set(ids[1:4])
    # Entra: remove listed members with a value and no filter.
    scim.patch(path, [{"op": "Remove", "path": "members", "value": [{"value": str(ids[1])}]}])
    assert members(group["id"]) == {ids[2], ids[3]}
    # Replace the whole list, and rename, in one request without a path (Entra).
    response = scim.patch(path, [{"op": "Replace", "value": {
        "displayName": "Crew B", "members": [{"value": str(ids[4])}]}}])
    assert response.status_code == 200 and response.get_json()["displayName"] == "Crew B"
    assert members(group["id"]) == {ids[4]}
    actions = [a for a in db.session.scalars(sa.select(AuditEvent.action)
                                              .where(AuditEvent.action.like("group.%")))]
    assert "group.member_added" in actions and "group.member_removed" in actions


def test_replace_sets_name_members_and_external_id(scim, account):
    a, b = make_user(account), make_user(account)
    group = create(scim, "Old", a.id)

    response = scim.put(f"Groups/{group['id']}", {
        "schemas": [GROUP], "displayName": "New", "externalId": "X",
        "members": [{"value": str(b.id)}]}, headers={"If-Match": group["meta"]["version"]})

    assert response.status_code == 200
    assert response.get_json()["displayName"] == "New"
    assert members(group["id"]) == {b.id}
    assert_scim_error(scim.put(f"Groups/{group['id']}", {"schemas": [GROUP], "displayName": "x"},
                               headers={"If-Match": group["meta"]["version"]}), 412)


def test_emptying_or_deleting_a_group_a_step_needs_says_what_to_fix(scim, account):
    only = make_user(account)
    group = make_group(account, "Approvers", [only])
    make_taskstream(account, "Purchases", [("Approve", group.id)])

    emptied = scim.patch(f"Groups/{group.id}", [{"op": "remove",
                                                 "path": f'members[value eq "{only.id}"]'}])
    deleted = scim.delete(f"Groups/{group.id}")

    assert "Approve" in assert_scim_error(emptied, 409)["detail"]
    assert "Approve" in assert_scim_error(deleted, 409)["detail"]
    assert members(group.id) == {only.id}
    assert db.session.get(Group, group.id) is not None


def test_delete_removes_the_group(scim, account):
    group = create(scim, "Temporary", make_user(account).id)

    assert scim.delete(f"Groups/{group['id']}").status_code == 204

    assert_scim_error(scim.get(f"Groups/{group['id']}"), 404)
    assert scim.find('displayName eq "Temporary"', "Groups") == []


def test_a_thousand_members_in_one_patch(scim, account):
    from tests.scim.bulk import add_people

    ids = add_people(account, 1000)
    group = create(scim, "Everyone")

    added = scim.patch(f"Groups/{group['id']}", [
        {"op": "add", "path": "members", "value": [{"value": str(i)} for i in ids]}])
    assert added.status_code == 200 and len(added.get_json()["members"]) == 1000
    removed = scim.patch(f"Groups/{group['id']}", [
        {"op": "remove", "path": "members", "value": [{"value": str(i)} for i in ids]}])
    assert removed.status_code == 200 and "members" not in removed.get_json()
    assert members(group["id"]) == set()


def test_deactivated_members_stay_listed_and_deleted_ones_do_not(scim, account):
    stays, dormant, goes = make_user(account), make_user(account), make_user(account)
    group = create(scim, "Mixed", stays.id, dormant.id, goes.id)
    scim.patch(f"Users/{dormant.id}", [{"op": "replace", "path": "active", "value": False}])
    scim.delete(f"Users/{goes.id}")

    listed = scim.get(f"Groups/{group['id']}").get_json()

    assert [m["value"] for m in listed["members"]] == [str(stays.id), str(dormant.id)]
    # A provider may add and remove its deactivated users too.
    removed = scim.patch(f"Groups/{group['id']}", [
        {"op": "remove", "path": f'members[value eq "{dormant.id}"]'}])
    assert [m["value"] for m in removed.get_json()["members"]] == [str(stays.id)]
    added = scim.patch(f"Groups/{group['id']}", [
        {"op": "add", "path": "members", "value": [{"value": str(dormant.id)}]}])
    assert len(added.get_json()["members"]) == 2
    assert_scim_error(scim.patch(f"Groups/{group['id']}", [
        {"op": "add", "path": "members", "value": [{"value": str(goes.id)}]}]), 400)
