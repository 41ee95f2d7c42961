"""Account settings: ranges, audit with old and new values, admins only."""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.services import settings
from portal.services.errors import Forbidden
from portal.services.errors import ServiceError
from tests.builders import make_user

DEFAULTS = dict(password_min_length=12, password_require_classes=False, invite_valid_hours=72,
                sender_name=None)


def test_changes_are_saved_and_audited_with_old_and_new_values(account):
    changes = settings.update_settings(
        account.admin, **dict(DEFAULTS, password_min_length=15, sender_name="  Field  Office "))
    assert changes == {"password_min_length": {"old": 12, "new": 15},
                       "sender_name": {"old": None, "new": "Field Office"}}
    db.session.refresh(account)
    assert (account.password_min_length, account.sender_name) == (15, "Field Office")
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "settings.changed"))
    assert event.details["changes"] == changes
    assert event.account_id == account.id


def test_saving_unchanged_settings_writes_no_event(account):
    assert settings.update_settings(account.admin, **DEFAULTS) == {}
    assert db.session.scalar(sa.select(sa.func.count()).where(
        AuditEvent.action == "settings.changed")) == 0


@pytest.mark.parametrize("field, value", [
    ("password_min_length", 7), ("password_min_length", 129), ("invite_valid_hours", 0),
    ("invite_valid_hours", 721), ("sender_name", "Evil\r\nBcc: all@example.com"),
    ("sender_name", "x" * 121),
])
def test_out_of_range_values_are_refused_and_nothing_changes(account, field, value):
    with pytest.raises(ServiceError) as caught:
        settings.update_settings(account.admin, **dict(DEFAULTS, **{field: value}))
    assert caught.value.field == field
    db.session.refresh(account)
    assert account.password_min_length == 12 and account.sender_name is None


def test_members_cannot_change_settings(account):
    member = make_user(account)
    with pytest.raises(Forbidden):
        settings.update_settings(member, **dict(DEFAULTS, password_min_length=20))
