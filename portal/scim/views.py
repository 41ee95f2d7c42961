"""/scim/v2: SCIM 2.0 provisioning for identity providers (Entra ID, Okta, …).

Authenticated by the account's bearer tokens only (Settings › Provisioning); the session
cookie is never read, which is what makes the CSRF exemption safe. Every answer is
``application/scim+json``; every refusal is a SCIM error (RFC 7644 §3.12), never a page.
"""
import importlib
import json
from flask import Blueprint
from flask import Response
from flask import g
from flask import request
from werkzeug.exceptions import HTTPException

from portal.extensions import csrf
from portal.extensions import db
from portal.services import scim_tokens
from portal.services import text
from portal.services.errors import ServiceError
from portal.session import bearer_token

# The SCIM services are imported at the first SCIM request, not with the app: they bring
# scim2-models and pydantic, ~0.5 s of CPU that every gunicorn worker, `flask` command and
# worker process would pay at start-up whether or not it ever answers SCIM (importing the
# app: 1.6 s CPU with them, 1.1 s without; tests/test_app.py checks they stay out).

bp = Blueprint("scim", __name__, url_prefix="/scim/v2")
csrf.exempt(bp)

MEDIA_TYPE = "application/scim+json"


def scim_response(body, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    if isinstance(body, dict) and isinstance(body.get("meta"), dict):
        version = body["meta"].get("version")
        if version:
            response.headers["ETag"] = version
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def scim():
    """portal.services.scim (imported on first use: see above)."""
    from portal.services import scim

    return scim


def error_response(error) -> Response:
    response = scim_response(error.as_json(), error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="scim"'
    return response


def http_error_response(error: HTTPException) -> Response:
    """A routing or protocol error (404, 405, 413, …) under /scim/ as a SCIM error."""
    return error_response(scim().ScimError(error.description or error.name, error.code or 400))


@bp.errorhandler(ServiceError)
def service_error(error: ServiceError):
    db.session.rollback()
    return error_response(scim().service_error(error))


@bp.before_request
def authenticate():
    """Let through only requests with a live token of an account (401 otherwise)."""
    actor = scim_tokens.authenticate(bearer_token())
    if actor is None:
        return error_response(scim().ScimError("A valid bearer token is required.", 401))
    g.scim_actor = actor
    return None


def base_url() -> str:
    return request.url_root.rstrip("/") + bp.url_prefix


def body():
    """Return the request's JSON document (400 invalidSyntax when it is not one)."""
    raw = request.get_data(cache=True)
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise scim().ScimError("The request body is not valid JSON.", 400,
                               "invalidSyntax") from None
    if text.has_control(document):
        # A NUL (PostgreSQL refuses it), a lone surrogate or a line break in a name or an id.
        raise scim().ScimError("A value contains control characters.", 400, "invalidValue")
    return document


def query():
    args = request.args
    return scim().make_query(
        args.get("filter"), args.get("startIndex"), args.get("count"),
        args.get("attributes"), args.get("excludedAttributes"),
        args.get("sortBy"), args.get("sortOrder"),
    )


def resource_query():
    args = request.args
    return scim().make_query(attributes=args.get("attributes"),
                           excluded=args.get("excludedAttributes"))


# --- discovery -----------------------------------------------------------------------------


@bp.get("/ServiceProviderConfig")
def service_provider_config():
    return scim_response(scim().service_provider_config(base_url()))


@bp.get("/ResourceTypes")
def resource_types():
    found = scim().resource_types(base_url())
    return scim_response(scim().list_response(found, len(found), 1))


@bp.get("/ResourceTypes/<ident>")
def resource_type(ident):
    for found in scim().resource_types(base_url()):
        if found["id"] == ident:
            return scim_response(found)
    raise scim().not_found("ResourceType", ident)


@bp.get("/Schemas")
def schemas():
    found = scim().schemas(base_url())
    return scim_response(scim().list_response(found, len(found), 1))


@bp.get("/Schemas/<ident>")
def schema(ident):
    for found in scim().schemas(base_url()):
        if found["id"] == ident:
            return scim_response(found)
    raise scim().not_found("Schema", ident)


# --- Users and Groups ----------------------------------------------------------------------


@bp.post("/.search")
def search_everything():
    raise scim().ScimError("Search one resource type at a time: POST /Users/.search or "
                    "/Groups/.search.", 501)


def _created(resource) -> Response:
    return scim_response(resource, 201, {"Location": resource["meta"]["location"]})


def _resource_views(kind: str, module: str, noun: str) -> None:
    """Register list, .search, create, get, replace, patch and delete for one resource type;
    the services' ``module`` has ``list_<noun>s``, ``create_<noun>``, ``get_<noun>`` and so on."""

    def call(verb, *args):
        name = f"{verb}_{noun}s" if verb == "list" else f"{verb}_{noun}"
        return getattr(importlib.import_module(module), name)(g.scim_actor, *args)

    def listing():
        return scim_response(call("list", query(), base_url()))

    def search():
        return scim_response(call("list", scim().search_query(body()), base_url()))

    # A partial answer for writes too (RFC 7644 §3.9): a provider patching a group of 1,000
    # members can leave them out of the answer with excludedAttributes=members.
    def create():
        return _created(call("create", body(), base_url(), resource_query()))

    def read(ident):
        return scim_response(call("get", ident, base_url(), resource_query()))

    def replace(ident):
        return scim_response(call("replace", ident, body(), base_url(),
                                  request.headers.get("If-Match"), resource_query()))

    def patch(ident):
        return scim_response(call("patch", ident, body(), base_url(),
                                  request.headers.get("If-Match"), resource_query()))

    def delete(ident):
        call("delete", ident, request.headers.get("If-Match"))
        return Response(status=204)

    for rule, view, method in (
        ("", listing, "GET"), ("/.search", search, "POST"), ("", create, "POST"),
        ("/<ident>", read, "GET"), ("/<ident>", replace, "PUT"), ("/<ident>", patch, "PATCH"),
        ("/<ident>", delete, "DELETE"),
    ):
        endpoint = f"{view.__name__}_{noun}s"
        bp.add_url_rule(f"/{kind}{rule}", endpoint, view, methods=[method])


_resource_views("Users", "portal.services.scim_users", "user")
_resource_views("Groups", "portal.services.scim_groups", "group")
