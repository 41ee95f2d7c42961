"""Hostile input into every SCIM entry point answers a SCIM error or success, never 5xx."""
import json

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.scim.conftest import ERROR
from tests.scim.conftest import PATCH
from tests.scim.conftest import USER

FUZZ = settings(max_examples=12, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
WORDS = st.sampled_from(["userName", "emails", "value", "type", "externalId", "active",
                         "eq", "co", "pr", "and", "or", "not", "(", ")", "[", "]", '"x"', "true",
                         "members", "name.formatted", "meta.created", "urn:x:y", ".", "\x00",
                         "\u202e", "é", "99999999999"])
FILTERS = st.one_of(st.text(max_size=60), st.lists(WORDS, max_size=8).map(" ".join))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["userName", "name", "active", "emails", "value", "op", "path",
                         "Operations", "schemas", "members", "externalId", "x"]), inner,
        max_size=4),
    max_leaves=12)


def answered(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert response.get_json()["schemas"] == [ERROR]


@FUZZ
@given(text=FILTERS)
def test_any_filter(scim, text):
    for resource in ("Users", "Groups"):
        answered(scim.get(resource, query={"filter": text, "startIndex": text[:5],
                                           "attributes": text}))


@FUZZ
@given(body=JSON)
def test_any_body(scim, body):
    found = scim.find('displayName eq "Fuzz"', "Groups") or [scim.post("Groups", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Fuzz"
    }).get_json()]
    group = found[0]["id"]
    answered(scim.post("Users", body))
    answered(scim.post("Users", {"schemas": [USER], "userName": "f@example.com",
                                 **(body if isinstance(body, dict) else {"x": body})}))
    answered(scim.post("Groups", body))
    answered(scim.request("PATCH", "Users/1", {"schemas": [PATCH], "Operations": body}))
    answered(scim.request("PATCH", f"Groups/{group}", {"schemas": [PATCH],
                                                       "Operations": [body]}))
    answered(scim.put(f"Groups/{group}", body))
    answered(scim.put("Users/1", body))
    answered(scim.request("POST", "Users/.search", raw=json.dumps(body)))
