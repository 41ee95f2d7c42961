"""Every state-changing route refuses a request without a valid CSRF token (T09)."""
import pytest
import sqlalchemy as sa
from werkzeug.routing import AnyConverter

from portal import create_app
from portal.extensions import db
from portal.models import AuditEvent
from tests.conftest import TEST_CONFIG

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _sample(rule, arg: str) -> str:
    """A value the rule's converter accepts: "1" for ids, the first choice of an ``any``."""
    converter = rule._converters[arg]
    if isinstance(converter, AnyConverter):
        return sorted(converter.items)[0]
    return "1"


def unsafe_routes():
    app = create_app(dict(TEST_CONFIG, DATABASE_URL="sqlite://"))
    for rule in app.url_map.iter_rules():
        # The JSON API and SCIM authenticate with bearer tokens only, never cookies: exempt.
        if rule.endpoint.startswith(("api.", "scim.")):
            continue
        for method in sorted(rule.methods & UNSAFE):
            path = rule.build({arg: _sample(rule, arg) for arg in rule.arguments},
                              append_unknown=False)[1]
            yield pytest.param(method, path, id=f"{method} {rule.rule}")


@pytest.mark.parametrize("method, path", list(unsafe_routes()))
@pytest.mark.parametrize("how", ["no token", "htmx without header", "token of another session"])
def test_a_state_change_without_a_valid_token_is_refused(admin, client, method, path, how):
    before = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))
    headers = {"HX-Request": "true"} if how == "htmx without header" else {}
    if how == "token of another session":
        headers["X-CSRFToken"] = client.csrf_token()
    response = admin.open(path, method=method, headers=headers, csrf=False)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id))) == before
