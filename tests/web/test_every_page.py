"""Every page, walked as an admin with made-up ids: headers on, never a server error (T15)."""
import pytest

from portal import create_app
from tests.conftest import TEST_CONFIG


def pages():
    app = create_app(dict(TEST_CONFIG, DATABASE_URL="sqlite://"))
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in ("static",) or rule.endpoint.startswith("api."):
            continue
        for value in ("1", "999999"):
            # An ``any(...)`` part takes one of its choices (the first), every id the value.
            values = {}
            for arg in rule.arguments:
                items = getattr(rule._converters.get(arg), "items", None)
                values[arg] = sorted(items)[0] if items else value
            path = rule.build(values, append_unknown=False)[1]
            yield pytest.param(path, id=path)


@pytest.mark.parametrize("path", sorted(set(pages())))
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "fragment"])
def test_every_page_answers_without_a_server_error_and_with_the_security_headers(admin, path, htmx):
    response = admin.get(path, headers={"HX-Request": "true"} if htmx else {})
    assert response.status_code < 500
    if response.mimetype == "text/html":
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
