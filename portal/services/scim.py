"""SCIM 2.0 (RFC 7643/7644): what every resource shares — errors, paging, attribute selection,
versions (ETags), and the discovery documents (ServiceProviderConfig, ResourceTypes, Schemas).

Payloads are validated and PATCH operations applied with ``scim2-models`` (python-scim), and
filters are parsed by it too (``ScimFilter``) before ``scim_filter`` turns them into SQL. The
resources themselves are mapped onto memberships and groups in ``scim_users`` and
``scim_groups``, through the same services as the pages. Nothing here knows HTTP: the
blueprint (portal/scim) passes plain values in and turns ``ScimError`` into responses.
"""
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic
from scim2_models import AuthenticationScheme
from scim2_models import Bulk
from scim2_models import ChangePassword
from scim2_models import Context
from scim2_models import ETag
from scim2_models import Filter
from scim2_models import Group
from scim2_models import Patch
from scim2_models import ResourceType
from scim2_models import SCIMException
from scim2_models import ServiceProviderConfig
from scim2_models import Sort
from scim2_models import User

from portal.extensions import db
from portal.services.errors import ServiceError

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
# Largest page a list answers (RFC 7644 §3.4.2.4: the server may return fewer than asked).
MAX_RESULTS = 1000
DEFAULT_COUNT = 100
# What the portal stores, and so what the published schemas list (a provider reads them);
# other RFC 7643 attributes (given and family name, e-mail types, …) are accepted and read
# or ignored, unknown ones refused. Responses hold only what is published.
USER_ATTRIBUTES = {
    "userName": None,
    "name": {"formatted"},
    "displayName": None,
    "active": None,
    "emails": {"value"},
    "phoneNumbers": {"value"},
    "groups": {"value", "$ref", "display"},
}
GROUP_ATTRIBUTES = {"displayName": None, "members": {"value", "$ref", "type"}}
# Always there for a portal user, so published as required: removing one is refused (400).
REQUIRED = {"userName", "name", "displayName", "active", "emails"}


class ScimError(ServiceError):
    """A SCIM request the portal refuses: an HTTP status, RFC 7644's scimType and a detail."""

    def __init__(self, detail: str, status: int = 400, scim_type: str | None = None):
        super().__init__(detail, status=status)
        self.scim_type = scim_type

    def as_json(self) -> dict[str, Any]:
        body = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.message}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def not_found(kind: str, ident: Any) -> ScimError:
    return ScimError(f"{kind} {ident} not found.", 404)


def from_scim_exception(error: SCIMException) -> ScimError:
    return ScimError(str(error), error.status, error.scim_type or None)


def from_validation_error(error: pydantic.ValidationError) -> ScimError:
    """Turn scim2-models' validation failure into one SCIM 400 naming each bad attribute."""
    scim_type = "invalidValue"
    parts = []
    for item in error.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()) if not isinstance(p, int))
        kind = item.get("type", "")
        if kind == "extra_forbidden":
            scim_type = "invalidSyntax"
            parts.append(f"unknown attribute {where!r}")
        else:
            ctx_type = (item.get("ctx") or {}).get("scim_type")
            if ctx_type:
                scim_type = ctx_type
            message = item.get("msg", "invalid")
            parts.append(f"{where}: {message}" if where else message)
    return ScimError("Invalid request: " + "; ".join(parts) + ".", 400, scim_type)


def service_error(error: ServiceError) -> ScimError:
    """Turn a rule's refusal from a portal service into the SCIM error a provider understands."""
    if isinstance(error, ScimError):
        return error
    if error.status == 404:
        return ScimError(error.message, 404)
    if error.field in ("email", "name") and "already" in error.message:
        return ScimError(error.message, 409, "uniqueness")
    if error.status == 409:
        return ScimError(error.message, 409)
    return ScimError(error.message, 400, "invalidValue")


# Schema URNs a provider lists without sending any attribute of them (Entra ID on groups).
IGNORED_SCHEMAS = {"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"}


def validate(model: type, payload: Any, context: Context):
    """Validate a request body against a scim2-models resource (ScimError when it is wrong)."""
    if not isinstance(payload, dict):
        raise ScimError("The request body must be a JSON object.", 400, "invalidSyntax")
    if isinstance(payload.get("schemas"), list):
        payload = {**payload, "schemas": [s for s in payload["schemas"]
                                          if s not in IGNORED_SCHEMAS or s in payload]}
    try:
        return model.model_validate(payload, scim_ctx=context)
    except pydantic.ValidationError as error:
        raise from_validation_error(error) from None
    except SCIMException as error:
        raise from_scim_exception(error) from None


# --- paging and attribute selection --------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """The list parameters of RFC 7644 §3.4.2 as plain values."""

    filter: str | None = None
    start_index: int = 1
    count: int = DEFAULT_COUNT
    attributes: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    sort_by: str | None = None
    descending: bool = False


def _number(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise ScimError(f"{name} must be an integer.", 400, "invalidValue") from None


def _names(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(n.strip() for n in str(value).split(",") if n.strip())


def make_query(filter_text=None, start_index=None, count=None, attributes=None,
               excluded=None, sort_by=None, sort_order=None) -> Query:
    """Read list parameters: startIndex below 1 counts as 1, count is capped (§3.4.2.4);
    sortOrder is ascending unless it says descending (§3.4.2.3)."""
    start = max(1, _number(start_index, "startIndex", 1))
    number = min(MAX_RESULTS, max(0, _number(count, "count", DEFAULT_COUNT)))
    order = str(sort_order or "ascending").strip().lower()
    if order not in ("ascending", "descending"):
        raise ScimError("sortOrder is ascending or descending.", 400, "invalidValue")
    sort = str(sort_by).strip() if sort_by else None
    return Query(filter_text or None, start, number, _names(attributes), _names(excluded),
                 sort or None, order == "descending")


SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def search_query(payload: Any) -> Query:
    """Read a POST …/.search body (RFC 7644 §3.4.3) into the list parameters."""
    if not isinstance(payload, dict):
        raise ScimError("The request body must be a JSON object.", 400, "invalidSyntax")
    known = {"schemas", "attributes", "excludedAttributes", "filter", "sortBy", "sortOrder",
             "startIndex", "count"}
    unknown = set(payload) - known
    if unknown or payload.get("schemas") != [SEARCH_SCHEMA]:
        raise ScimError(f"A SearchRequest has the schema {SEARCH_SCHEMA} and only "
                        f"{', '.join(sorted(known - {'schemas'}))}.", 400, "invalidSyntax")
    names = []
    for key in ("attributes", "excludedAttributes"):
        value = payload.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ScimError(f"{key} is a list of attribute names.", 400, "invalidValue")
        names.append(",".join(value))
    text = payload.get("filter")
    if text is not None and not isinstance(text, str):
        raise ScimError("filter is a string.", 400, "invalidFilter")
    for key in ("sortBy", "sortOrder"):
        if payload.get(key) is not None and not isinstance(payload[key], str):
            raise ScimError(f"{key} is a string.", 400, "invalidValue")
    return make_query(text, payload.get("startIndex"), payload.get("count"), *names,
                      payload.get("sortBy"), payload.get("sortOrder"))


def _short(name: str, schema: str) -> str:
    """Return an attribute name without its schema URN, lower-cased ("name.givenName")."""
    lowered = name.lower()
    prefix = schema.lower() + ":"
    if lowered.startswith(prefix):
        lowered = lowered[len(prefix):]
    return lowered


ALWAYS = {"id", "schemas", "meta"}


def wants(query: Query, attribute: str, schema: str) -> bool:
    """Tell whether a top-level attribute is to be returned (and so worth loading)."""
    name = attribute.lower()
    if query.attributes:
        return name in ALWAYS or any(
            _short(a, schema).split(".")[0] == name for a in query.attributes
        )
    return not any(_short(a, schema) == name for a in query.excluded)


def select_attributes(resource: dict[str, Any], query: Query, schema: str) -> dict[str, Any]:
    """Apply ``attributes``/``excludedAttributes`` (top level and one sub-attribute)."""
    if not query.attributes and not query.excluded:
        return resource
    out = {}
    for key, value in resource.items():
        if not wants(query, key, schema):
            continue
        subs = {_short(a, schema).split(".", 1)[1] for a in query.attributes
                if _short(a, schema).startswith(key.lower() + ".")}
        if subs and key.lower() not in ALWAYS and not any(
                _short(a, schema) == key.lower() for a in query.attributes):
            value = _keep_subs(value, subs)
        out[key] = value
    return out


def _keep_subs(value: Any, subs: set[str]) -> Any:
    if isinstance(value, list):
        return [_keep_subs(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k.lower() in subs}
    return value


# Where the previous page of a list ended: (account, resource, filter, next startIndex) ->
# (the last id, the pass's totalResults). A provider reads every page in turn, and OFFSET
# costs what it skips (the last of 1,000 pages walks 100,000 rows); continuing after the last
# id read costs one page. The count is made on a pass's first page and again on its last
# (a page not full, or reaching the total), so the answer a provider stops on is exact, and
# the pages between carry the first page's figure (RFC 7644 §3.4.2.4 does not promise a
# consistent view across pages) instead of counting 100,000 rows a thousand times. Per
# process and bounded: a miss (another process, an old entry) pays the OFFSET and the count.
_CONTINUATIONS: OrderedDict[tuple, tuple[int, int]] = OrderedDict()
_CONTINUATIONS_LOCK = threading.Lock()
CONTINUATIONS_KEPT = 1024


def sort_column(query: Query, keys: dict[str, Any], schema: str):
    """Return the column ``sortBy`` names among ``keys`` (attribute paths as SCIM spells
    them; None: id order), or refuse (400)."""
    if not query.sort_by:
        return None
    found = {k.lower(): v for k, v in keys.items()}.get(_short(query.sort_by, schema))
    if found is None:
        raise ScimError(f"Sorting by {query.sort_by!r} is not supported; the portal sorts by "
                        f"{', '.join(keys)}.", 400, "invalidValue")
    return found


def _sorted_page(query: Query, stmt, id_column, key) -> list[int]:
    """One page in ``sortBy`` order, ties by id; what has no value comes last ascending and
    first descending (RFC 7644 §3.4.2.3)."""
    if query.descending:
        order = (key.is_(None).desc(), key.desc(), id_column.desc())
    else:
        order = (key.is_(None), key, id_column)
    return list(db.session.scalars(
        stmt.order_by(*order).limit(query.count).offset(query.start_index - 1)))


def _total(query: Query, ids: list[int], count: Callable[[], int]) -> int:
    """totalResults: a first page with room to spare holds them all (a provider's lookup by
    userName or externalId counts nothing); otherwise ``count()``."""
    if query.start_index == 1 and len(ids) < query.count:
        return len(ids)
    return count()


def page_ids(account_id: int, query: Query, stmt, id_column, count: Callable[[], int],
             sort_key=None) -> tuple[list[int], int]:
    """Return the ids of one list page (``stmt`` selects ids), in id order (or by
    ``sort_key``, the column ``sortBy`` names), and the total ``count()`` gives (carried over
    from the previous page of the same pass in id order)."""
    if sort_key is not None:
        ids = _sorted_page(query, stmt, id_column, sort_key) if query.count else []
        return ids, _total(query, ids, count)
    kind = id_column.class_.__name__
    with _CONTINUATIONS_LOCK:
        found = _CONTINUATIONS.pop((account_id, kind, query.filter, query.start_index), None)
    if not query.count:
        return [], count()
    ordered = stmt.order_by(id_column).limit(query.count)
    if found is not None:
        after, total = found
        ids = list(db.session.scalars(ordered.where(id_column > after)))
    else:
        ids = list(db.session.scalars(ordered.offset(query.start_index - 1)))
    if found is None or len(ids) < query.count or query.start_index + len(ids) > total:
        total = _total(query, ids, count)  # a pass's first page, and the page it stops on
    if len(ids) == query.count:
        with _CONTINUATIONS_LOCK:
            key = (account_id, kind, query.filter, query.start_index + len(ids))
            _CONTINUATIONS[key] = (ids[-1], total)
            while len(_CONTINUATIONS) > CONTINUATIONS_KEPT:
                _CONTINUATIONS.popitem(last=False)
    return ids, total


def list_response(resources: list[dict[str, Any]], total: int, start_index: int
                  ) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


# --- versions ------------------------------------------------------------------------------


def timestamp(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment is not None else None


def version_of(resource: dict[str, Any]) -> str:
    """Return a weak ETag of a resource's content (meta left out)."""
    content = {k: v for k, v in resource.items() if k != "meta"}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:20]
    return f'W/"{digest}"'


def with_meta(resource: dict[str, Any], kind: str, location: str, created: datetime | None,
              modified: datetime | None) -> dict[str, Any]:
    resource["meta"] = {
        "resourceType": kind,
        "created": timestamp(created),
        "lastModified": timestamp(modified or created),
        "location": location,
        "version": version_of(resource),
    }
    return resource


def check_version(resource: dict[str, Any], if_match: str | None) -> None:
    """Refuse a change based on a stale copy (If-Match naming another version): 412."""
    if not if_match or if_match.strip() == "*":
        return
    wanted = {v.strip() for v in if_match.split(",")}
    current = resource["meta"]["version"]
    if current not in wanted and current.removeprefix("W/") not in wanted:
        raise ScimError("The resource changed since that version was read; read it again.",
                        412)


# --- discovery -----------------------------------------------------------------------------


def service_provider_config(base: str) -> dict[str, Any]:
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[AuthenticationScheme(
            type="oauthbearertoken",
            name="Bearer token",
            description="A token of the account from Settings › Provisioning (or "
                        "`flask scim token create`), sent as Authorization: Bearer.",
            primary=True,
        )],
    )
    body = config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    body["meta"] = {"resourceType": "ServiceProviderConfig",
                    "location": f"{base}/ServiceProviderConfig"}
    return body


def _resource_type(base: str, ident: str, endpoint: str, schema: str, text: str):
    body = ResourceType(
        id=ident, name=ident, endpoint=endpoint, description=text, schema_=schema,
    ).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    body["meta"] = {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{ident}"}
    return body


def resource_types(base: str) -> list[dict[str, Any]]:
    return [
        _resource_type(base, "User", "/Users", USER_SCHEMA,
                       "A user (membership) of this account; userName is the e-mail address."),
        _resource_type(base, "Group", "/Groups", GROUP_SCHEMA, "A group of this account."),
    ]


def _trimmed_schema(model, keep: dict[str, set[str] | None], base: str) -> dict[str, Any]:
    schema = model.to_schema()
    attributes = []
    for attribute in schema.attributes:
        if attribute.name not in keep:
            continue
        subs = keep[attribute.name]
        if attribute.name in REQUIRED:
            attribute.required = True
        if subs is not None and attribute.sub_attributes:
            attribute.sub_attributes = [s for s in attribute.sub_attributes if s.name in subs]
        attributes.append(attribute)
    schema.attributes = attributes
    body = schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    body["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{schema.id}"}
    return body


def schemas(base: str) -> list[dict[str, Any]]:
    return [_trimmed_schema(User, USER_ATTRIBUTES, base),
            _trimmed_schema(Group, GROUP_ATTRIBUTES, base)]
