"""SCIM Users: the memberships of the token's account, through the same services as the pages.

Mapping (RFC 7643 §4.1): ``id`` is the membership id; ``userName`` (and ``emails``) the
person's e-mail; ``name.formatted`` — else given and family name, else ``displayName`` — the
full name; ``phoneNumbers`` the phone; ``externalId`` is kept per membership; ``active`` is
"not deleted": ``active: false`` soft-deletes through the deletion service (restorable, and
its blocked cases answer 409 saying what to fix), ``active: true`` restores. DELETE
soft-deletes too and the user is then gone for SCIM (404) while an admin can still restore it
within retention. A person already known from another account is linked, never duplicated;
nothing of another account is ever read into a response.
"""
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from scim2_models import Context
from scim2_models import EnterpriseUser
from scim2_models import PatchOp
from scim2_models import SCIMException
from scim2_models import User as ScimUser

from portal.extensions import db
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import ScimUserLink
from portal.models import User
from portal.models import utcnow
from portal.services import deletion
from portal.services import invitations
from portal.services import people
from portal.services import profiles
from portal.services import scope
from portal.services import scim_filter as sf
from portal.services.errors import ServiceError
from portal.services.scim import USER_SCHEMA
from portal.services.scim import Query
from portal.services.scim import ScimError
from portal.services.scim import check_version
from portal.services.scim import from_scim_exception
from portal.services.scim import list_response
from portal.services.scim import not_found
from portal.services.scim import page_ids
from portal.services.scim import select_attributes
from portal.services.scim import service_error
from portal.services.scim import sort_column
from portal.services.scim import validate
from portal.services.scim import wants
from portal.services.scim import with_meta
from portal.services.users import Selection
from portal.services.users import selected_ids

# Every RFC 7643 User attribute (and Entra's enterprise extension) is accepted; the ones the
# portal does not store are ignored. Attributes no schema defines are refused (400).
Model = ScimUser[EnterpriseUser]
Link = ScimUserLink

# A SCIM DELETE hides the membership it deleted (still restorable by an admin); an admin's own
# deletion, or ``active: false``, leaves it visible as inactive. ``removed_at IS NOT NULL``
# lets the probe use the small partial index of stamped links.
_hidden = sa.exists().where(Link.membership_id == Membership.id, Link.removed_at.is_not(None),
                            Link.removed_at == Membership.deleted_at)
VISIBLE = sa.or_(Membership.deleted_at.is_(None), ~_hidden)


def _visible_page() -> sa.ColumnElement[bool]:
    """``VISIBLE`` for a list page. On PostgreSQL the same rows as ``NOT EXISTS`` alone (a
    live membership's NULL ``deleted_at`` equals no ``removed_at``): an anti-join costed by
    what it reads, where the OR was costed as a probe per row and so JIT-compiled on a page
    that misses its continuation (OFFSET 90,000 of 100,000: 0.75 s, 0.44 s of it compiling;
    85 ms as an anti-join). SQLite keeps the OR: it skips the probe for every live row."""
    return ~_hidden if db.session.get_bind().dialect.name == "postgresql" else VISIBLE


def count_visible(stmt: sa.Select) -> int:
    """Count the visible memberships among those ``stmt`` selects, live and deleted apart:
    the live ones are an index-only count, the deleted ones few. One count over the OR
    (``VISIBLE``) was costed as a probe per row, and PostgreSQL compiled it with JIT on every
    page of a sync pass (0.6 s a page at 100,000 users)."""
    total = 0
    for part in (Membership.deleted_at.is_(None),
                 sa.and_(Membership.deleted_at.is_not(None), ~_hidden)):
        total += db.session.scalar(
            sa.select(sa.func.count()).select_from(stmt.where(part).subquery()))
    return total


_email = sf.related(Membership.user_id, User.id,
                    sf.string(User.email, lowered=True, nullable=False))
_name = sf.string(Membership.sort_name, lowered=True, nullable=False)
FILTERS = {
    "id": sf.identifier(Membership.id),
    "username": _email,
    "emails.value": _email,
    "emails.type": sf.constant("work"),
    "emails.primary": sf.boolean(sa.true()),
    "displayname": _name,
    "name.formatted": _name,
    "phonenumbers.value": sf.related(Membership.user_id, User.id, sf.string(User.phone)),
    "externalid": sf.related(Membership.id, Link.membership_id,
                             sf.string(Link.external_id, case_exact=True)),
    "active": sf.boolean(Membership.deleted_at.is_(None)),
    "groups.value": sf.related(Membership.id, GroupMember.membership_id,
                               sf.identifier(GroupMember.group_id)),
    "meta.created": sf.moment(Membership.created_at),
}


# sortBy (RFC 7644 §3.4.2.3): the sort keys the Users list keeps (lower-cased e-mail and
# shown name), the dates of meta, the externalId. The link is joined under its own name: the
# ``_hidden`` probe correlates with the plain one.
_sort_link = so.aliased(Link)
SORTS = {
    "userName": Membership.sort_email,
    "emails.value": Membership.sort_email,
    "displayName": Membership.sort_name,
    "name.formatted": Membership.sort_name,
    "externalId": _sort_link.external_id,
    "meta.created": Membership.created_at,
    "meta.lastModified": sa.func.coalesce(_sort_link.modified_at, Membership.created_at),
    "id": Membership.id,
}


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: int
    created_at: Any
    deleted_at: Any
    email: str
    name: str
    phone: str | None
    external_id: str | None
    modified_at: Any


# Someone known elsewhere who has not accepted this account's invitation shows as this
# account wrote them (DESIGN §1). Built once: every SCIM answer reads users through it.
_ROWS = (
    sa.select(Membership.id, Membership.created_at, Membership.deleted_at, User.email,
              people.shown_name(), people.shown_phone(), Link.external_id, Link.modified_at)
    .join(User, User.id == Membership.user_id)
    .outerjoin(Link, Link.membership_id == Membership.id)
    .where(Membership.id.in_(sa.bindparam("ids", expanding=True)))
)


# The same with each user's groups, one row per group (none: one row with NULLs), in the
# order a resource lists them: one statement a page instead of a second for the groups.
_ROWS_WITH_GROUPS = (
    _ROWS.add_columns(Group.id, Group.name)
    .outerjoin(GroupMember, GroupMember.membership_id == Membership.id)
    .outerjoin(Group, Group.id == GroupMember.group_id)
    .order_by(Group.name_key, Group.id)
)

Groups = dict[int, list[tuple[int, str]]]


def _rows(ids: list[int], groups: bool = False) -> tuple[dict[int, Row], Groups]:
    """Read users as SCIM shows them (and, when asked, the groups each is in)."""
    rows: dict[int, Row] = {}
    found: Groups = defaultdict(list)
    if not ids:
        return rows, found
    if not groups:
        return {row.id: Row(*row) for row in db.session.execute(_ROWS, {"ids": ids})}, found
    for row in db.session.execute(_ROWS_WITH_GROUPS, {"ids": ids}):
        if row[0] not in rows:
            rows[row[0]] = Row(*row[:8])
        if row[8] is not None:
            found[row[0]].append((row[8], row[9]))
    return rows, found


def _resource(row: Row, groups: list[tuple[int, str]] | None, base: str) -> dict[str, Any]:
    resource: dict[str, Any] = {"schemas": [USER_SCHEMA], "id": str(row.id)}
    if row.external_id is not None:
        resource["externalId"] = row.external_id
    resource.update(
        userName=row.email,
        name={"formatted": row.name},
        displayName=row.name,
        active=row.deleted_at is None,
        emails=[{"value": row.email}],
    )
    if row.phone:
        resource["phoneNumbers"] = [{"value": row.phone}]
    if groups:
        resource["groups"] = [
            {"value": str(gid), "$ref": f"{base}/Groups/{gid}", "display": name}
            for gid, name in groups
        ]
    return with_meta(resource, "User", f"{base}/Users/{row.id}", row.created_at,
                     row.modified_at)


def _visible_id(actor, ident) -> int:
    """Return the membership id a SCIM id names in the actor's account, or raise 404."""
    number = scope.parse_id(ident)
    found = None
    if number is not None:
        found = db.session.scalar(
            scope.in_account(sa.select(Membership.id), Membership, actor)
            .where(Membership.id == number, VISIBLE)
        )
    if found is None:
        raise not_found("User", ident)
    return found


def _load(actor, ident, base: str, query: Query = Query(), *, checked: bool = False,
          groups: bool = True) -> dict[str, Any]:
    """Return the user as a SCIM resource; ``checked``: ``ident`` is a membership id of the
    actor's account this request just wrote (no second lookup); ``groups=False``: it is in
    none (just created)."""
    membership_id = int(ident) if checked else _visible_id(actor, ident)
    rows, found = _rows([membership_id], groups and wants(query, "groups", USER_SCHEMA))
    return _resource(rows[membership_id], found.get(membership_id), base)


def get_user(actor, ident, base: str, query: Query = Query()) -> dict[str, Any]:
    """Return one user of the actor's account as a SCIM resource (404 outside it)."""
    return select_attributes(_load(actor, ident, base, query), query, USER_SCHEMA)


def list_users(actor, query: Query, base: str) -> dict[str, Any]:
    """Return a ListResponse page of the account's users matching the filter, by id (or in
    ``sortBy`` order)."""
    stmt = scope.in_account(sa.select(Membership.id), Membership, actor)
    if query.filter:
        stmt = stmt.where(sf.to_sql(query.filter, FILTERS, USER_SCHEMA))
    key = sort_column(query, SORTS, USER_SCHEMA)
    page = stmt.where(_visible_page())
    if key is not None:
        page = page.outerjoin(_sort_link, _sort_link.membership_id == Membership.id)
    ids, total = page_ids(actor.account_id, query, page, Membership.id,
                          lambda: count_visible(stmt), key)
    rows, groups = _rows(ids, wants(query, "groups", USER_SCHEMA))
    resources = [
        select_attributes(_resource(rows[i], groups.get(i), base), query, USER_SCHEMA)
        for i in ids if i in rows
    ]
    return list_response(resources, total, query.start_index)


# --- writing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """What a request asks a user to be, in the portal's terms (None: leave as it is)."""

    email: str
    name: str
    phone: str | None
    external_id: str | None
    active: bool | None


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _full_name(model) -> tuple[str, str, str]:
    """Return (formatted, given + family, displayName) of a SCIM user, each possibly empty."""
    name = model.name
    formatted = _text(name.formatted) if name else ""
    parts = " ".join(p for p in (_text(name.given_name), _text(name.family_name)) if p) \
        if name else ""
    return formatted, parts, _text(model.display_name)


def _pick_phone(model, before: list[str]) -> str | None:
    """The phone among ``phoneNumbers``: a new one first, then the primary, then the first."""
    numbers = [n for n in (model.phone_numbers or []) if n.value]
    if not numbers:
        return None
    fresh = [n for n in numbers if n.value not in before]
    for candidates in (fresh, [n for n in numbers if n.primary], numbers):
        if candidates:
            return str(candidates[0].value)
    return None


def _pick_email(model, before_email: str | None) -> str:
    """``userName`` is the e-mail; a changed e-mail in ``emails`` (patched alone) counts too."""
    user_name = _text(model.user_name)
    if before_email is not None and user_name.lower() == before_email:
        for entry in model.emails or []:
            if entry.value and str(entry.value).lower() != before_email:
                return str(entry.value)
    if not user_name:
        raise ScimError("userName (the e-mail address) is required.", 400, "invalidValue")
    return user_name


def _wanted(model, before: dict[str, Any] | None = None) -> Wanted:
    """Read the request's user into portal terms; ``before`` is the user a PATCH started from."""
    formatted, parts, display = _full_name(model)
    email = _pick_email(model, before["email"] if before else None)
    if before is None:
        name = formatted or parts or display or email.split("@")[0]
    elif formatted != before["formatted"] and formatted:
        name = formatted
    elif parts != before["parts"] and parts:
        name = parts
    elif display != before["display"] and display:
        name = display
    else:
        name = before["name"]
    active = model.active
    if before is not None and active == before["active"]:
        active = None
    phone = _pick_phone(model, before["phones"] if before else [])
    return Wanted(email=email, name=name, phone=phone, external_id=model.external_id,
                  active=active)


def _set_external_id(membership_id: int, external_id: str | None, *, new: bool = False,
                     **extra) -> None:
    """Keep the provider's externalId (and what else SCIM notes) for a membership; no commit.
    ``new``: the membership was just created, so it has no link yet (one SELECT less)."""
    link = None if new else db.session.get(Link, membership_id)
    if link is None:
        link = Link(membership_id=membership_id)
        db.session.add(link)
    link.external_id = external_id
    link.modified_at = utcnow()
    for key, value in extra.items():
        setattr(link, key, value)


def _deactivate(actor, membership_id: int) -> None:
    """Soft-delete the membership through the deletion service; no commit."""
    report = deletion.delete_within(actor, selected_ids(actor, Selection(ids=[membership_id])))
    if report.blocked:
        raise ScimError(f"Not deactivated: {report.blocked[0].reason}", 409)


def _reactivate(actor, membership_id: int) -> None:
    """Restore the membership through the deletion service; no commit."""
    report = deletion.restore_users(actor, [membership_id], commit=False)
    if report.refused:
        raise ScimError(f"Not reactivated: {report.refused[0].reason}", 409)
    if not report.restored:
        raise ScimError("Not reactivated: this user is no longer recoverable.", 409)
    db.session.expire_all()  # the restore was a set-wise UPDATE: read the membership again


def _apply(actor, membership_id: int, wanted: Wanted, **link_extra) -> None:
    """Bring a membership to what the request asks, each part through its own service, in
    one transaction: the commit comes last, so a refusal half-way (a blocked deactivation,
    a taken e-mail) leaves the user exactly as it was. ``link_extra``: more to note on the
    SCIM link (``removed_at``)."""
    membership = scope.get_in_account(Membership, membership_id, actor, include_deleted=True)
    try:
        if wanted.active is True and membership.deleted_at is not None:
            _reactivate(actor, membership_id)
            membership = scope.get_in_account(Membership, membership_id, actor)
        profiles.update_profile(
            actor, membership_id, name=wanted.name, email=wanted.email, phone=wanted.phone,
            version=membership.user.version, include_deleted=True, commit=False,
        )
        link = db.session.get(Link, membership_id)
        if (link.external_id if link else None) != wanted.external_id or link_extra:
            _set_external_id(membership_id, wanted.external_id, **link_extra)
        if wanted.active is False and membership.deleted_at is None:
            _deactivate(actor, membership_id)
        db.session.commit()
    except ServiceError as error:
        db.session.rollback()
        raise service_error(error) from None


def _existing(actor, raw_email: str):
    """Return (id, visible) of the account's membership with this e-mail, or None."""
    try:
        email = people.normalise_email(raw_email)
    except ServiceError:
        return None
    return db.session.execute(
        scope.in_account(sa.select(Membership.id, VISIBLE.label("visible")), Membership, actor)
        .join(User, User.id == Membership.user_id)
        .where(User.email == email)
    ).first()


def create_user(actor, payload: Any, base: str, query: Query = Query()) -> dict[str, Any]:
    """Create a user from a SCIM resource: a new person, or the known person linked (409 when
    already a user of this account; a user removed with DELETE comes back).

    A provider creates far more users than it re-creates: the person service is asked first
    (it checks the e-mail and looks the person up, once), and only its refusal looks for the
    account's own user with that e-mail — one SCIM DELETE removed is restored instead."""
    model = validate(Model, payload, Context.RESOURCE_CREATION_REQUEST)
    wanted = _wanted(model)
    created: list[Row] = []

    def before_commit(membership: Membership) -> None:
        # In add_person's transaction: the externalId, a user created inactive, and the user
        # read as SCIM shows it (no second transaction to read it back after the commit).
        _set_external_id(membership.id, wanted.external_id, new=True)
        if wanted.active is False:
            _deactivate(actor, membership.id)
        created.extend(_rows([membership.id])[0].values())

    try:
        invitations.add_person(actor, name=wanted.name, email=wanted.email, phone=wanted.phone,
                               invite=actor.send_invitations, before_commit=before_commit)
    except ServiceError as error:
        db.session.rollback()
        if isinstance(error, ScimError) or error.field != "email":
            raise service_error(error) from None
        existing = _existing(actor, wanted.email)
        if existing is None:
            raise service_error(error) from None
        if existing.visible:
            raise ScimError(f"A user with userName {people.normalise_email(wanted.email)} "
                            "already exists in this account.", 409, "uniqueness") from None
        # Removed with a SCIM DELETE and still within retention: restore it as this request
        # says.
        _apply(actor, existing.id, Wanted(**{**wanted.__dict__, "active": True}),
               removed_at=None)
        return select_attributes(_load(actor, existing.id, base, query, checked=True), query,
                                 USER_SCHEMA)
    # A new user is in no group yet.
    return select_attributes(_resource(created[0], None, base), query, USER_SCHEMA)


def replace_user(actor, ident, payload: Any, base: str, if_match: str | None = None,
                 query: Query = Query()) -> dict[str, Any]:
    """PUT: make the user what the resource says (Okta deactivates this way)."""
    current = _load(actor, ident, base)
    check_version(current, if_match)
    model = validate(Model, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    wanted = _wanted(model)
    if wanted.active == current["active"]:
        wanted = Wanted(**{**wanted.__dict__, "active": None})
    _apply(actor, int(current["id"]), wanted)
    return get_user(actor, ident, base, query)


def _patch_base(resource: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Return the stored user as a scim2-models resource to patch, and what it held."""
    name = resource["name"]["formatted"]
    given, _, family = name.rpartition(" ")
    phones = [p["value"] for p in resource.get("phoneNumbers", [])]
    data = {
        "schemas": [USER_SCHEMA],
        "id": resource["id"],
        "externalId": resource.get("externalId"),
        "userName": resource["userName"],
        "name": {"formatted": name, "givenName": given or None, "familyName": family or None},
        "displayName": name,
        "active": resource["active"],
        "emails": [{"value": resource["userName"], "type": "work", "primary": True}],
        "phoneNumbers": [{"value": p, "type": "work", "primary": True} for p in phones] or None,
    }
    model = Model.model_validate({k: v for k, v in data.items() if v is not None})
    before = {
        "email": resource["userName"], "formatted": name,
        "parts": " ".join(p for p in (given, family) if p), "display": name, "name": name,
        "active": resource["active"], "phones": phones,
    }
    return model, before


def patch_user(actor, ident, payload: Any, base: str, if_match: str | None = None,
               query: Query = Query()) -> dict[str, Any]:
    """PATCH: apply add/replace/remove operations (Entra's path-less replace and "False"
    strings included) to the stored user, then bring the user to the result."""
    current = _load(actor, ident, base)
    check_version(current, if_match)
    operations = validate(PatchOp[Model], payload, Context.RESOURCE_PATCH_REQUEST)
    model, before = _patch_base(current)
    try:
        operations.patch(model)
    except SCIMException as error:
        raise from_scim_exception(error) from None
    except (ValueError, TypeError) as error:
        raise ScimError(f"Invalid operation: {error}", 400, "invalidValue") from None
    _apply(actor, int(current["id"]), _wanted(model, before))
    return get_user(actor, ident, base, query)


def delete_user(actor, ident, if_match: str | None = None) -> None:
    """DELETE: soft-delete through the deletion service; the user is then 404 for SCIM."""
    current = _load(actor, ident, "")
    check_version(current, if_match)
    membership_id = int(current["id"])
    try:
        if current["active"]:
            _deactivate(actor, membership_id)
    except ServiceError as error:
        db.session.rollback()
        raise service_error(error) from None
    deleted_at = db.session.scalar(sa.select(Membership.deleted_at)
                                   .where(Membership.id == membership_id))
    link = db.session.get(Link, membership_id)
    _set_external_id(membership_id, link.external_id if link else None, removed_at=deleted_at)
    db.session.commit()  # one transaction: the deletion and the link that hides it
