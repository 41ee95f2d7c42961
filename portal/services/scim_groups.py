"""SCIM Groups: the account's groups, members through the groups service (set-wise).

``id`` is the group id, ``displayName`` its name (unique per account whatever the case:
409 ``uniqueness``), ``members`` its live members as SCIM User ids. Adding or removing 1,000
members in one PATCH is one set-wise statement each way. A removal that would leave a
taskstream step with no one, or deleting a group assigned to a step, answers 409 saying
what to fix.
"""
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from scim2_models import Context
from scim2_models import Group as ScimGroup
from scim2_models import PatchOp

from portal.extensions import db
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import ScimGroupLink
from portal.models import utcnow
from portal.services import groups
from portal.services import scope
from portal.services import scim_filter as sf
from portal.services.errors import ServiceError
from portal.services.scim import GROUP_SCHEMA
from portal.services.scim import Query
from portal.services.scim import ScimError
from portal.services.scim import check_version
from portal.services.scim import list_response
from portal.services.scim import not_found
from portal.services.scim import page_ids
from portal.services.scim import select_attributes
from portal.services.scim import service_error
from portal.services.scim import sort_column
from portal.services.scim import validate
from portal.services.scim import wants
from portal.services.scim import with_meta
from portal.services.scim_users import VISIBLE

Link = ScimGroupLink


FILTERS = {
    "id": sf.identifier(Group.id),
    "displayname": sf.string(Group.name_key, lowered=True, nullable=False),
    "externalid": sf.related(Group.id, Link.group_id,
                             sf.string(Link.external_id, case_exact=True)),
    "members.value": sf.related(Group.id, GroupMember.group_id,
                                sf.identifier(GroupMember.membership_id)),
    "meta.created": sf.moment(Group.created_at),
}


_sort_link = so.aliased(Link)
SORTS = {
    "displayName": Group.name_key,
    "externalId": _sort_link.external_id,
    "meta.created": Group.created_at,
    "meta.lastModified": sa.func.coalesce(_sort_link.modified_at, Group.created_at),
    "id": Group.id,
}


def _members(group_ids: list[int]) -> dict[int, list[int]]:
    """Return group id -> the ids of its members SCIM shows (live and deactivated users)."""
    found: dict[int, list[int]] = {g: [] for g in group_ids}
    if group_ids:
        for group_id, membership_id in db.session.execute(
            sa.select(GroupMember.group_id, GroupMember.membership_id)
            .join(Membership, Membership.id == GroupMember.membership_id)
            .where(GroupMember.group_id.in_(group_ids), VISIBLE)
            .order_by(GroupMember.membership_id)
        ):
            found[group_id].append(membership_id)
    return found


def _resources(group_ids: list[int], base: str, query: Query) -> list[dict[str, Any]]:
    if not group_ids:
        return []
    rows = {
        row[0]: row
        for row in db.session.execute(
            sa.select(Group.id, Group.name, Group.created_at, Link.external_id, Link.modified_at)
            .outerjoin(Link, Link.group_id == Group.id)
            .where(Group.id.in_(group_ids))
        )
    }
    members = _members(group_ids) if wants(query, "members", GROUP_SCHEMA) else {}
    out = []
    for gid in group_ids:
        if gid not in rows:
            continue
        _id, name, created, external_id, modified = rows[gid]
        resource: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": str(gid)}
        if external_id is not None:
            resource["externalId"] = external_id
        resource["displayName"] = name
        if members.get(gid):
            resource["members"] = [
                {"value": str(mid), "$ref": f"{base}/Users/{mid}", "type": "User"}
                for mid in members[gid]
            ]
        with_meta(resource, "Group", f"{base}/Groups/{gid}", created, modified)
        out.append(select_attributes(resource, query, GROUP_SCHEMA))
    return out


def _group_id(actor, ident) -> int:
    number = scope.parse_id(ident)
    found = None
    if number is not None:
        found = db.session.scalar(
            scope.in_account(sa.select(Group.id), Group, actor).where(Group.id == number))
    if found is None:
        raise not_found("Group", ident)
    return found


def get_group(actor, ident, base: str, query: Query = Query()) -> dict[str, Any]:
    """Return one group of the actor's account (404 outside it)."""
    return _resources([_group_id(actor, ident)], base, query)[0]


def list_groups(actor, query: Query, base: str) -> dict[str, Any]:
    """Return a ListResponse page of the account's groups matching the filter, by id."""
    stmt = scope.in_account(sa.select(Group.id), Group, actor)
    if query.filter:
        stmt = stmt.where(sf.to_sql(query.filter, FILTERS, GROUP_SCHEMA))
    key = sort_column(query, SORTS, GROUP_SCHEMA)
    page = stmt if key is None else stmt.outerjoin(_sort_link, _sort_link.group_id == Group.id)
    ids, total = page_ids(actor.account_id, query, page, Group.id, lambda: db.session.scalar(
        sa.select(sa.func.count()).select_from(stmt.subquery())), key)
    return list_response(_resources(ids, base, query), total, query.start_index)


# --- writing -------------------------------------------------------------------------------


def _member_ids(actor, values, *, strict: bool = True) -> list[int]:
    """Return the membership ids SCIM member values name; 400 for any not in this account
    (unless not ``strict``: a removal of someone already gone is no error)."""
    wanted = []
    for value in values or []:
        raw = value.get("value") if isinstance(value, dict) else getattr(value, "value", value)
        wanted.append(raw)
    numbers = [scope.parse_id(v) for v in wanted]
    known = set(db.session.scalars(
        scope.in_account(sa.select(Membership.id), Membership, actor)
        .where(Membership.id.in_([n for n in numbers if n is not None]), VISIBLE)
    )) if any(n is not None for n in numbers) else set()
    unknown = [str(v) for v, n in zip(wanted, numbers, strict=True) if n not in known]
    if unknown and strict:
        raise ScimError(f"No user with id {', '.join(unknown[:5])} in this account.", 400,
                        "invalidValue")
    return sorted(known)


def _member_set(group_id: int) -> set[int]:
    return set(db.session.scalars(
        sa.select(GroupMember.membership_id)
        .join(Membership, Membership.id == GroupMember.membership_id)
        .where(GroupMember.group_id == group_id, VISIBLE)
    ))


def _set_external_id(group_id: int, external_id: str | None) -> None:
    link = db.session.get(Link, group_id)
    if link is None:
        if external_id is None:
            return
        link = Link(group_id=group_id)
        db.session.add(link)
    link.external_id = external_id
    link.modified_at = utcnow()


def _change(actor, group_id: int, *, name: str | None = None, add: set[int] = frozenset(),
            remove: set[int] = frozenset(), external_id: Any = ...) -> None:
    """Rename, add and remove members, keep the externalId: each through the groups service,
    in one transaction (the commit comes last, so a refused removal leaves the name as it
    was too)."""
    try:
        if name is not None:
            groups.rename_group(actor, group_id, name, commit=False)
        if add:
            groups.insert_members(actor, [group_id], sorted(add), include_deleted=True)
        if remove:
            groups.remove_from_group(actor, group_id, sorted(remove), include_deleted=True,
                                     commit=False)
        if external_id is not ...:
            _set_external_id(group_id, external_id)
        else:
            link = db.session.get(Link, group_id)
            if link is not None:
                link.modified_at = utcnow()
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        raise service_error(error) from None
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise ScimError("The group changed at the same moment; send the request again.",
                        409) from None


def create_group(actor, payload: Any, base: str, query: Query = Query()) -> dict[str, Any]:
    """Create a group (with its members) from a SCIM resource."""
    model = validate(ScimGroup, payload, Context.RESOURCE_CREATION_REQUEST)
    member_ids = _member_ids(actor, model.members)
    try:
        group = groups.create_group(actor, model.display_name or "")
    except ServiceError as error:
        db.session.rollback()
        raise service_error(error) from None
    _change(actor, group.id, add=set(member_ids), external_id=model.external_id)
    return get_group(actor, group.id, base, query)


def replace_group(actor, ident, payload: Any, base: str, if_match: str | None = None,
                  query: Query = Query()) -> dict[str, Any]:
    """PUT: the group's name, externalId and members become what the resource says."""
    current = get_group(actor, ident, base)
    check_version(current, if_match)
    model = validate(ScimGroup, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    group_id = int(current["id"])
    wanted = set(_member_ids(actor, model.members))
    present = _member_set(group_id)
    _change(actor, group_id,
            name=model.display_name if model.display_name != current["displayName"] else None,
            add=wanted - present, remove=present - wanted, external_id=model.external_id)
    return get_group(actor, group_id, base, query)


def _operation_parts(operation) -> tuple[str, str, Any]:
    op = operation.op.value if hasattr(operation.op, "value") else str(operation.op)
    path = str(operation.path) if operation.path is not None else ""
    return op.lower(), path, operation.value


def _entra_removal(operation: Any) -> list | None:
    """Return the members an Entra ID ``remove`` of ``members`` with a value list names (RFC
    7644 wants a filter in the path instead), or None for any other operation."""
    if (isinstance(operation, dict) and str(operation.get("op", "")).lower() == "remove"
            and str(operation.get("path", "")).lower() == "members"
            and isinstance(operation.get("value"), list)):
        return operation["value"]
    return None


def _operations(payload: Any) -> list:
    """Validate a PatchOp and return its operations, Entra's list removals kept as lists."""
    if not isinstance(payload, dict) or not isinstance(payload.get("Operations"), list):
        validate(PatchOp[ScimGroup], payload, Context.RESOURCE_PATCH_REQUEST)
    ops = payload["Operations"]
    plain = [op for op in ops if _entra_removal(op) is None]
    checked = iter(validate(PatchOp[ScimGroup], {**payload, "Operations": plain},
                            Context.RESOURCE_PATCH_REQUEST).operations if plain else [])
    return [_entra_removal(op) if _entra_removal(op) is not None else next(checked)
            for op in ops]


def patch_group(actor, ident, payload: Any, base: str, if_match: str | None = None,
                query: Query = Query()) -> dict[str, Any]:
    """PATCH: displayName, externalId and members (add, remove by value path or by list,
    replace), Entra's path-less replace included; members change set-wise."""
    group_id = _group_id(actor, ident)
    if if_match:
        check_version(get_group(actor, group_id, base), if_match)
    operations = _operations(payload)
    present = _member_set(group_id)
    members = set(present)
    changes: dict[str, Any] = {}
    for operation in operations:
        if isinstance(operation, list):  # Entra ID's removal by value list
            members -= set(_member_ids(actor, operation, strict=False))
            continue
        op, path, value = _operation_parts(operation)
        lowered = path.lower()
        if not path:
            if not isinstance(value, dict):
                raise ScimError("A replace or add without a path needs an object value.", 400,
                                "invalidValue")
            items = {k.lower(): v for k, v in value.items()}
            unknown = set(items) - {"displayname", "externalid", "members", "id", "schemas"}
            if unknown:
                raise ScimError(f"Unknown attribute {sorted(unknown)[0]!r}.", 400,
                                "invalidPath")
            if "displayname" in items:
                changes["name"] = items["displayname"]
            if "externalid" in items:
                changes["external_id"] = items["externalid"]
            if "members" in items:
                ids = set(_member_ids(actor, items["members"]))
                members = ids if op == "replace" else members | ids
            continue
        if lowered == "displayname":
            if op == "remove":
                raise ScimError("displayName is required.", 400, "mutability")
            changes["name"] = value
        elif lowered == "externalid":
            changes["external_id"] = None if op == "remove" else value
        elif lowered == "members":
            ids = set(_member_ids(actor, value if isinstance(value, list) else
                                  [value] if value else []))
            if op == "add":
                members |= ids
            elif op == "replace":
                members = ids
            else:
                members = set()
        elif lowered.startswith("members["):
            if op != "remove":
                raise ScimError("Only remove takes a members value filter.", 400, "invalidPath")
            members -= _filtered_members(path, present)
        else:
            raise ScimError(f"The path {path!r} names no attribute of a group.", 400,
                            "invalidPath")
    name = changes.get("name")
    if name is not None and not isinstance(name, str):
        raise ScimError("displayName must be a string.", 400, "invalidValue")
    current_name = db.session.scalar(sa.select(Group.name).where(Group.id == group_id))
    _change(actor, group_id, name=name if name and name != current_name else None,
            add=members - present, remove=present - members,
            external_id=changes.get("external_id", ...))
    return get_group(actor, group_id, base, query)


def _filtered_members(path: str, present: set[int]) -> set[int]:
    """Return the members a ``members[value eq "…"]`` path names (or/and of such tests)."""
    inner = path[path.index("[") + 1:path.rindex("]")]
    clause = sf.to_sql(inner, {"value": sf.identifier(GroupMember.membership_id)}, GROUP_SCHEMA)
    if not present:
        return set()
    return set(db.session.scalars(
        sa.select(GroupMember.membership_id)
        .where(GroupMember.membership_id.in_(present), clause)
        .distinct()
    ))


def delete_group(actor, ident, if_match: str | None = None) -> None:
    """DELETE: delete the group; one assigned to a taskstream step answers 409."""
    group_id = _group_id(actor, ident)
    if if_match:
        check_version(get_group(actor, group_id, ""), if_match)
    try:
        result = groups.delete_groups(actor, [group_id])
    except ServiceError as error:
        db.session.rollback()
        raise service_error(error) from None
    if result.blocked:
        raise ScimError(result.blocked[0].message, 409)
