"""PUT and PATCH change a user or a group in one transaction: a refusal or a failure after the
first part (a blocked deactivation, a member who cannot leave) leaves nothing changed."""
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import ScimGroupLink
from portal.models import ScimUserLink
from portal.services import groups as groups_service
from portal.services import scim_users
from portal.services.errors import ServiceError
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user
from tests.scim.conftest import GROUP
from tests.scim.conftest import assert_scim_error
from tests.scim.conftest import user_body


def state(membership_id: int):
    """What a failed request must not have changed: name, e-mail, phone, externalId, deleted."""
    db.session.expire_all()
    membership = db.session.get(Membership, membership_id)
    link = db.session.get(ScimUserLink, membership_id)
    return (membership.user.name, membership.user.email, membership.user.phone,
            link.external_id if link else None, membership.deleted_at)


def events() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))


def test_a_put_whose_deactivation_is_refused_changes_nothing(scim, account):
    admin = account.admin.id
    scim.get(f"Users/{admin}")  # the token's first use is recorded before the test counts
    before, counted = state(admin), events()

    response = scim.put(f"Users/{admin}", user_body(
        "renamed-admin@example.com", name={"formatted": "Renamed Admin"}, externalId="A-1",
        phoneNumbers=[{"value": "+44 20 7946 0958"}], active=False))

    assert "admin" in assert_scim_error(response, 409)["detail"].lower()
    assert state(admin) == before
    assert events() == counted


def test_a_patch_failing_after_the_profile_changed_changes_nothing(scim, account, monkeypatch):
    user = scim.create_user("half@example.com", name={"formatted": "Half Way"}, externalId="H")
    before, counted = state(int(user["id"])), events()

    def refuse(actor, membership_id):
        raise ServiceError("Injected failure after the profile was changed.")

    monkeypatch.setattr(scim_users, "_deactivate", refuse)
    response = scim.patch(f"Users/{user['id']}", [
        {"op": "replace", "path": "name.formatted", "value": "Changed Name"},
        {"op": "replace", "path": "userName", "value": "moved@example.com"},
        {"op": "replace", "path": "externalId", "value": "H-2"},
        {"op": "replace", "path": "active", "value": False},
    ])

    assert_scim_error(response, 400)
    assert state(int(user["id"])) == before
    assert events() == counted
    assert scim.get(f"Users/{user['id']}").get_json()["meta"]["version"] == user["meta"]["version"]


def group_state(group_id: int):
    db.session.expire_all()
    group = db.session.get(Group, group_id)
    link = db.session.get(ScimGroupLink, group_id)
    return group.name, link.external_id if link else None, set(db.session.scalars(
        sa.select(GroupMember.membership_id).where(GroupMember.group_id == group_id)))


def test_a_group_patch_whose_removal_is_refused_keeps_the_name_and_the_members(scim, account):
    only = make_user(account)
    group = make_group(account, "Approvers", [only])
    make_taskstream(account, "Purchases", [("Approve", group.id)])
    before, counted = group_state(group.id), events()

    response = scim.patch(f"Groups/{group.id}", [
        {"op": "replace", "path": "displayName", "value": "Approvers (renamed)"},
        {"op": "replace", "path": "externalId", "value": "G-2"},
        {"op": "remove", "path": f'members[value eq "{only.id}"]'},
    ])

    assert "Approve" in assert_scim_error(response, 409)["detail"]
    assert group_state(group.id) == before
    assert events() == counted


def test_a_group_put_failing_half_way_changes_nothing(scim, account, monkeypatch):
    a, b = make_user(account), make_user(account)
    created = scim.post("Groups", {"schemas": [GROUP], "displayName": "Crew",
                                   "members": [{"value": str(a.id)}]}).get_json()
    group_id = int(created["id"])
    before, counted = group_state(group_id), events()

    def refuse(*args, **kwargs):
        raise ServiceError("Injected failure after the rename and the additions.")

    monkeypatch.setattr(groups_service, "remove_from_group", refuse)
    response = scim.put(f"Groups/{group_id}", {"schemas": [GROUP], "displayName": "Crew B",
                                               "externalId": "C-2",
                                               "members": [{"value": str(b.id)}]})

    assert_scim_error(response, 400)
    assert group_state(group_id) == before
    assert events() == counted
