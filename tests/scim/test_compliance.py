"""scim2-tester (python-scim) checks the portal's SCIM service against RFC 7643/7644.

It discovers what ServiceProviderConfig, ResourceTypes and Schemas publish and runs every
check that applies: discovery, create, read, list, attributes and excludedAttributes,
.search, replace, PATCH add/replace/remove of each published attribute, delete, random URLs.
The requests go straight into the WSGI app (scim2-client's in-process engine), on whichever
database the suite runs.
"""
import random
import typing
import uuid
from collections.abc import Sequence

from scim2_client.engines.wsgi import WSGISCIMClient
from scim2_tester import Status
from scim2_tester import check_server

from portal.extensions import db
from tests.scim.conftest import token_for


class Fresh(Sequence):
    """Examples the checker picks from: a new value each time (random.choice indexes it)."""

    def __init__(self, make):
        self.make = make

    def __len__(self):
        return 10**9

    def __getitem__(self, _index):
        return self.make()


def _describe_values(client) -> None:
    """Tell the checker what no schema can say: userName is an e-mail address and a phone
    number is a real one (E.164), so its random strings are not refused as bad input."""
    user = client.get_resource_model("User")
    user.model_fields["user_name"].examples = Fresh(lambda: f"{uuid.uuid4().hex}@example.com")
    phone = typing.get_args(typing.get_args(user.model_fields["phone_numbers"].annotation)[0])[0]
    phone.model_fields["value"].examples = Fresh(
        lambda: f"+4420794600{random.randint(0, 99):02d}")


def test_scim2_tester_passes_every_check_that_applies(app, account):
    token = token_for(account, "scim2-tester")
    db.session.commit()
    client = WSGISCIMClient(app, base_url="http://portal.test/scim/v2",
                            headers={"Authorization": f"Bearer {token}"})
    client.discover()
    _describe_values(client)

    results = check_server(client)

    failed = [f"{r.title}: {r.reason}" for r in results if r.status != Status.SUCCESS
              and not (r.status == Status.SKIPPED and "several resource types" in str(r.reason))]
    assert failed == []
    titles = {r.title for r in results if r.status == Status.SUCCESS}
    assert {"object_creation", "object_replacement", "object_deletion", "check_add_attribute",
            "check_replace_attribute", "check_remove_attribute"} <= titles
    assert len(results) >= 60
