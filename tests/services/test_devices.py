"""Device lists and log out: admins for users of their account, people for themselves."""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.services import auth
from portal.services import devices
from portal.services.errors import NotFound
from portal.services.errors import ServiceError
from tests.builders import make_account
from tests.builders import make_device
from tests.builders import make_user


def test_an_admin_lists_a_users_devices_with_kind_and_version(account):
    member = make_user(account)
    make_device(member.user)
    make_device(member.user, kind="ipad", name="Front desk", app_version="4.2.1")
    listing = devices.devices_of(account.admin, member.id)
    assert [(r.device.name, r.kind_label, r.device.app_version) for r in listing.live] == [
        ("Front desk — app 4.2.1", "iPad", "4.2.1"),
        ("Chrome 131 on Mac OS X", "Web", None),
    ]
    assert listing.ended == []


def test_an_admin_logs_out_one_device_and_it_is_anonymous_at_once(account):
    member = make_user(account)
    _, kept = make_device(member.user)
    device, revoked = make_device(member.user)
    devices.revoke_device(account.admin, member.id, device.id)
    assert auth.load_session(revoked) is None
    assert auth.load_session(kept) is not None
    assert auth.ended_reason(revoked) == f"{account.admin.user.name} logged this device out."
    listing = devices.devices_of(account.admin, member.id)
    assert [r.ended_label for r in listing.ended] == [f"Logged out by {account.admin.user.name}"]
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "device.revoked"))
    assert event.subject_user_id == member.user_id
    assert event.actor_user_id == account.admin.user_id
    assert event.details["device"] == device.name


def test_devices_of_another_accounts_user_are_not_found(account):
    other = make_account()
    stranger = make_user(other)
    device, token = make_device(stranger.user)
    with pytest.raises(NotFound):
        devices.devices_of(account.admin, stranger.id)
    with pytest.raises(NotFound):
        devices.revoke_device(account.admin, stranger.id, device.id)
    # A device of another person, named through a user of the admin's own account.
    member = make_user(account)
    with pytest.raises(NotFound):
        devices.revoke_device(account.admin, member.id, device.id)
    assert auth.load_session(token) is not None


def test_ended_devices_say_how_they_ended(account):
    member = make_user(account)
    by_limit, _ = make_device(member.user)
    for _ in range(3):
        make_device(member.user)
    current, _ = make_device(member.user)
    own = devices.own_devices(current)
    labels = {r.device.id: r.ended_label for r in own.ended}
    assert labels[by_limit.id] == "Logged out by the device limit"
    assert [r.current for r in own.live].count(True) == 1


def test_a_person_logs_out_another_own_device_but_not_this_one(account):
    member = make_user(account)
    other, other_token = make_device(member.user)
    current, current_token = make_device(member.user)
    devices.log_out_own_device(current, other.id)
    assert auth.load_session(other_token) is None
    with pytest.raises(ServiceError):
        devices.log_out_own_device(current, current.id)
    stranger_device, _ = make_device(make_user(account).user)
    with pytest.raises(NotFound):
        devices.log_out_own_device(current, stranger_device.id)
    assert auth.load_session(current_token) is not None


def test_log_out_everywhere_else_keeps_only_this_device(account):
    member = make_user(account)
    tokens = [make_device(member.user)[1] for _ in range(2)]
    current, current_token = make_device(member.user)
    assert devices.log_out_everywhere_else(current) == 2
    assert [auth.load_session(t) for t in tokens] == [None, None]
    assert auth.load_session(current_token).id == current.id
