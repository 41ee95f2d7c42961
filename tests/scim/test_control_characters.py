"""SCIM: a control character anywhere in a document is a SCIM error, never a 500 (issue 11,
finding 5: PostgreSQL refuses NUL in any text parameter; lone surrogates cannot be stored)."""
import pytest

from tests.scim.conftest import GROUP
from tests.scim.conftest import USER
from tests.scim.conftest import assert_scim_error
from tests.scim.conftest import user_body


@pytest.mark.parametrize("value", ["x\x00y", "\ud800", "line\nbreak", "\u202eevil"])
def test_control_characters_in_a_scim_document_are_refused(scim, value):
    documents = [
        ("Users", user_body("ada@example.com", externalId=value)),
        ("Users", user_body("ada@example.com", name={"formatted": value})),
        ("Groups", {"schemas": [GROUP], "displayName": value}),
        ("Groups", {"schemas": [GROUP], "displayName": "Drivers", "externalId": value}),
    ]
    for resource, document in documents:
        assert_scim_error(scim.post(resource, document), 400, "invalidValue")
    assert scim.find('userName eq "ada@example.com"') == []
    assert scim.get("Groups").get_json()["totalResults"] == 0


def test_a_clean_document_is_still_accepted(scim):
    created = scim.create_user("ada@example.com", externalId="ext-1",
                               name={"formatted": "Ada Lovelace"})
    assert created["externalId"] == "ext-1"
    assert USER in created["schemas"]
