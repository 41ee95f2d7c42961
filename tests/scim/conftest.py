"""SCIM fixtures: a provider's client with a token of the account (``scim``)."""
import json

import pytest

from portal.services import accounts
from portal.services import scim_tokens

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


class Provider:
    """An identity provider talking to /scim/v2 with one bearer token (no cookies, no CSRF)."""

    def __init__(self, client, token: str):
        self.client = client
        self.token = token

    def request(self, method: str, path: str, body=None, *, raw: str | None = None,
                headers: dict | None = None, token: str | None = None, query=None):
        sent = {"Authorization": f"Bearer {token or self.token}",
                "Content-Type": "application/scim+json"}
        sent.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        url = path if path.startswith("/") else f"/scim/v2/{path}"
        return self.client.open(url, method=method, data=data, headers=sent, csrf=False,
                                query_string=query)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, operations, **kw):
        return self.request("PATCH", path, {"schemas": [PATCH], "Operations": operations}, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def create_user(self, email, **attrs):
        response = self.post("Users", user_body(email, **attrs))
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def find(self, scim_filter: str, resource: str = "Users") -> list[dict]:
        response = self.get(resource, query={"filter": scim_filter})
        assert response.status_code == 200, response.get_json()
        return response.get_json()["Resources"]


def user_body(email, **attrs):
    body = {"schemas": [USER], "userName": email, "active": True}
    body.update(attrs)
    return body


def token_for(account, name="Entra ID", send_invitations=False) -> str:
    return scim_tokens.create_token(accounts.Operator(account.id), name,
                                    send_invitations=send_invitations)[1]


@pytest.fixture
def scim(app, account) -> Provider:
    """The account's identity provider (token "Entra ID", no invitation e-mails)."""
    return Provider(app.test_client(), token_for(account))


def assert_scim_error(response, status: int, scim_type: str | None = None) -> dict:
    """The answer is a SCIM error (RFC 7644 §3.12) with this status (and scimType)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/scim+json"
    body = response.get_json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body["detail"]
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body
