"""Intranet addresses: special-use e-mail domains accepted by PORTAL_EMAIL_SPECIAL_USE_DOMAINS."""
import pytest

from portal import create_app
from portal.services import csv_check
from portal.services import invitations
from portal.services import people
from portal.services.errors import ServiceError
from tests.builders import csv_bytes


def test_a_local_intranet_address_is_accepted_by_default(account):
    assert people.normalise_email("Ana@Corp.Local") == "ana@corp.local"
    membership = invitations.add_person(account.admin, name="Ana Lima", email="ana@corp.local")
    assert membership.user.email == "ana@corp.local"


def test_the_import_accepts_local_addresses_by_default(account):
    data = csv_bytes([("Ana Lima", "ana@corp.local", ""), ("Bo", "bo@host.localhost", "")])
    preview = csv_check.preview_csv(account.admin, data)
    assert [(row.email, row.status) for row in preview.rows] == [
        ("ana@corp.local", "new"), ("bo@host.localhost", "invalid")]
    assert "PORTAL_EMAIL_SPECIAL_USE_DOMAINS" in preview.rows[1].reason


@pytest.mark.config(EMAIL_SPECIAL_USE_DOMAINS=[])
def test_with_none_accepted_the_refusal_names_the_setting(account):
    with pytest.raises(ServiceError) as error:
        people.normalise_email("ana@corp.local")
    assert "special-use" in error.value.message
    assert "PORTAL_EMAIL_SPECIAL_USE_DOMAINS" in error.value.message
    assert error.value.field == "email"
    preview = csv_check.preview_csv(account.admin, csv_bytes([("Ana", "ana@corp.local", "")]))
    assert preview.rows[0].status == "invalid"


@pytest.mark.config(EMAIL_SPECIAL_USE_DOMAINS="local, Test")
def test_the_setting_takes_comma_separated_names(app):
    assert app.config["EMAIL_SPECIAL_USE_DOMAINS"] == ("local", "test")
    assert people.normalise_email("ci@build.test") == "ci@build.test"
    with pytest.raises(ServiceError):
        people.normalise_email("tor@site.onion")


def test_the_environment_variable_is_read_as_json(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_EMAIL_SPECIAL_USE_DOMAINS", '["local", "localhost"]')
    app = create_app({"TESTING": True, "SECRET_KEY": "x",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert app.config["EMAIL_SPECIAL_USE_DOMAINS"] == ("local", "localhost")
