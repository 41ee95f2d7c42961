"""sortBy/sortOrder (advertised in ServiceProviderConfig, RFC 7644 §3.4.2.3) on Users and
Groups, and a 1,000-member group read or patched without its members
(``excludedAttributes=members``, on reads and on write answers, RFC 7644 §3.9)."""
import sqlalchemy as sa

from portal.extensions import db
from tests.builders import make_group
from tests.scim.bulk import add_people
from tests.scim.conftest import assert_scim_error

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MINE = 'userName ew "@sort.example"'


def names(response, key="userName"):
    assert response.status_code == 200, response.get_json()
    return [r[key] for r in response.get_json()["Resources"]]


def listed(scim, **query):
    return scim.get("Users", query={"filter": MINE, **query})


def test_sort_is_advertised_and_bulk_is_not(scim):
    config = scim.get("ServiceProviderConfig").get_json()

    assert config["sort"] == {"supported": True}
    assert config["bulk"]["supported"] is False


def test_users_sort_by_each_attribute_providers_use(scim):
    bob = scim.create_user("bob@sort.example", name={"formatted": "Charlie Brown"},
                           externalId="E-2")
    scim.create_user("alice@sort.example", name={"formatted": "bob Dylan"})
    scim.create_user("Carol@sort.example", name={"formatted": "Alice Cooper"},
                     externalId="E-1")
    scim.patch(f"Users/{bob['id']}", [{"op": "replace", "path": "externalId", "value": "E-3"}])

    assert names(listed(scim, sortBy="userName")) == [
        "alice@sort.example", "bob@sort.example", "carol@sort.example"]
    assert names(listed(scim, sortBy="userName", sortOrder="descending")) == [
        "carol@sort.example", "bob@sort.example", "alice@sort.example"]
    assert names(listed(scim, sortBy="name.formatted"), "displayName") == [
        "Alice Cooper", "bob Dylan", "Charlie Brown"]
    assert names(listed(scim, sortBy="displayName", sortOrder="DESCENDING"), "displayName") == [
        "Charlie Brown", "bob Dylan", "Alice Cooper"]
    # No externalId: last ascending, first descending.
    assert names(listed(scim, sortBy="externalId")) == [
        "carol@sort.example", "bob@sort.example", "alice@sort.example"]
    assert names(listed(scim, sortBy="externalId", sortOrder="descending")) == [
        "alice@sort.example", "bob@sort.example", "carol@sort.example"]
    assert names(listed(scim, sortBy="meta.created")) == [
        "bob@sort.example", "alice@sort.example", "carol@sort.example"]
    assert names(listed(scim, sortBy="urn:ietf:params:scim:schemas:core:2.0:User:meta.lastModified",
                        sortOrder="descending"))[0] == "bob@sort.example"
    assert names(listed(scim, sortBy="userName", startIndex=2, count=1)) == ["bob@sort.example"]
    searched = scim.post("Users/.search", {"schemas": [SEARCH], "filter": MINE,
                                           "sortBy": "userName", "sortOrder": "descending"})
    assert names(searched)[0] == "carol@sort.example"


def test_an_unknown_sort_attribute_or_order_is_a_scim_400(scim):
    assert "userName" in assert_scim_error(
        scim.get("Users", query={"sortBy": "title"}), 400, "invalidValue")["detail"]
    assert_scim_error(scim.get("Users", query={"sortBy": "userName", "sortOrder": "up"}), 400,
                      "invalidValue")
    assert_scim_error(scim.post("Users/.search", {"schemas": [SEARCH], "sortBy": 3}), 400)


def test_groups_sort_by_display_name(scim, account):
    for name in ("beta", "Alpha", "gamma"):
        make_group(account, name)

    assert names(scim.get("Groups", query={"sortBy": "displayName"}), "displayName") == [
        "Alpha", "beta", "gamma"]
    assert names(scim.get("Groups", query={"sortBy": "displayName", "sortOrder": "descending"}),
                 "displayName") == ["gamma", "beta", "Alpha"]


def test_a_thousand_member_group_is_read_and_patched_without_its_members(scim, account):
    ids = add_people(account, 1001)
    group = make_group(account, "Everyone")
    db.session.commit()
    assert scim.patch(f"Groups/{group.id}", [{"op": "add", "path": "members", "value": [
        {"value": str(i)} for i in ids[:1000]]}]).status_code == 200
    statements: list[str] = []

    def note(_conn, _cursor, statement, *_args):
        statements.append(statement.lower())

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        read = scim.get(f"Groups/{group.id}", query={"excludedAttributes": "members"})
        listed_groups = scim.get("Groups", query={"attributes": "displayName"})
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    patched = scim.patch(f"Groups/{group.id}", [{"op": "add", "path": "members", "value": [
        {"value": str(ids[1000])}]}], query={"excludedAttributes": "members"})
    replaced = scim.put(f"Groups/{group.id}", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "All",
        "members": [{"value": str(i)} for i in ids]}, query={"attributes": "displayName"})
    full = scim.get(f"Groups/{group.id}").get_json()

    assert read.status_code == 200 and "members" not in read.get_json()
    assert read.get_json()["displayName"] == "Everyone"
    assert all("members" not in g for g in listed_groups.get_json()["Resources"])
    assert not [s for s in statements if "group_members" in s], statements
    assert patched.status_code == 200 and "members" not in patched.get_json()
    assert replaced.status_code == 200 and set(replaced.get_json()) == {
        "schemas", "id", "meta", "displayName"}
    assert len(full["members"]) == 1001
    assert patched.get_json()["meta"]["version"] != full["meta"]["version"]
