"""Issue 11, finding 6: every request refused for another account's id leaves one audit event
(actor, route, the id asked for), at most AUDIT_REFUSALS_PER_MINUTE per actor (ASVS 16.3.2)."""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_user

USERS = "/admin/participants/users"
HX = {"HX-Request": "true"}


def refusals() -> list[AuditEvent]:
    db.session.commit()
    return list(db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "access.refused").order_by(AuditEvent.id)))


def test_another_accounts_id_is_404_and_one_event_in_the_actors_trail(admin, account):
    beta = make_account("Beta Org")
    theirs = make_user(beta, name="Beta Person")
    assert admin.get(f"{USERS}/{theirs.id}").status_code == 404
    assert admin.get(f"{USERS}/{theirs.id}", headers=HX).status_code == 404
    assert admin.post(f"{USERS}/{theirs.id}/reset-password").status_code == 404
    events = refusals()
    assert len(events) == 3
    first = events[0]
    assert (first.account_id, first.actor_user_id) == (account.id, account.admin.user_id)
    assert first.details == {"route": f"{USERS}/{theirs.id}", "method": "GET",
                             "kind": "Membership", "id": str(theirs.id)}
    assert first.ip == "127.0.0.1" and first.subject_user_id is None
    assert events[2].details["method"] == "POST"
    # Nothing about Beta's person in Acme's trail, and Beta's trail has nothing new.
    assert "Beta Person" not in str([(e.subject_label, e.details) for e in events])
    assert all(e.account_id == account.id for e in events)


def test_an_absent_id_leaves_the_same_event_as_another_accounts(admin, account):
    theirs = make_user(make_account(), name="Elsewhere")
    assert admin.get(f"{USERS}/{theirs.id}").status_code == 404
    assert admin.get(f"{USERS}/999999").status_code == 404
    foreign, absent = refusals()
    assert foreign.details.keys() == absent.details.keys()
    assert absent.details["id"] == "999999"


def test_refusals_on_groups_and_devices_are_recorded_too(admin, account):
    beta = make_account()
    group = make_group(beta, "Beta Group")
    person = make_user(beta)
    assert admin.get(f"/admin/participants/groups/{group.id}").status_code == 404
    assert admin.get(f"{USERS}/{person.id}/devices").status_code == 404
    assert [e.details["kind"] for e in refusals()] == ["Group", "Membership"]


@pytest.mark.config(AUDIT_REFUSALS_PER_MINUTE=5)
def test_a_crawler_cannot_flood_the_trail(admin, account):
    theirs = make_user(make_account())
    codes = {admin.get(f"{USERS}/{theirs.id + n}").status_code for n in range(12)}
    assert codes == {404}
    assert len(refusals()) == 5
    # Another admin of the account has their own allowance.
    second = make_user(account, role="admin")
    other = admin.application.test_client()
    assert other.login(second.user.email).status_code == 302
    assert other.get(f"{USERS}/{theirs.id}").status_code == 404
    assert [e.actor_user_id for e in refusals()][-1] == second.user_id
