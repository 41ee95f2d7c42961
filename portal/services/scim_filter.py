"""SCIM filters (RFC 7644 §3.4.2.2) turned into SQL.

``scim2-models`` parses the filter (its ``ScimFilter`` grammar, Entra's
``emails[type eq "work"].value eq "…"`` included) and we walk the tree it builds with its
``FilterVisitor``, mapping each attribute the portal stores onto a column. An attribute the
portal does not store, a value of the wrong type or a syntax error is a 400 ``invalidFilter``.
"""
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from scim2_models import InvalidFilterException
from scim2_models import ScimFilter
from scim2_models.path import AttrPath
from scim2_models.path import CompareOperator
from scim2_models.path import Comparison
from scim2_models.path import FilterVisitor
from scim2_models.path import LogicalExpr
from scim2_models.path import LogicalOperator
from scim2_models.path import Not
from scim2_models.path import Present
from scim2_models.path import ValuePath

from portal.services.scim import ScimError

Op = CompareOperator


def invalid(detail: str) -> ScimError:
    return ScimError(detail, 400, "invalidFilter")


@dataclass(frozen=True)
class Attr:
    """How one filterable attribute maps onto SQL."""

    compare: Callable[[Op, Any], sa.ColumnElement[bool]]
    present: Callable[[], sa.ColumnElement[bool]]


def _string_value(op: Op, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(f"The {op.value} operator needs a string here, not {value!r}.")
    return value


def string(column, *, lowered: bool = False, case_exact: bool = False,
           nullable: bool = True) -> Attr:
    """A string column: ``lowered`` when it already holds lower-case text (e-mails, sort keys);
    otherwise compared case-insensitively through lower() unless ``case_exact``."""
    target = column if (lowered or case_exact) else sa.func.lower(column)

    def compare(op: Op, value: Any):
        text = _string_value(op, value)
        if not case_exact:
            text = text.lower()
        if op is Op.eq:
            return target == text
        if op is Op.ne:
            return sa.or_(target.is_(None), target != text) if nullable else target != text
        if op is Op.co:
            return target.contains(text, autoescape=True)
        if op is Op.sw:
            return target.startswith(text, autoescape=True)
        if op is Op.ew:
            return target.endswith(text, autoescape=True)
        return {Op.gt: target > text, Op.ge: target >= text, Op.lt: target < text,
                Op.le: target <= text}[op]

    return Attr(compare, lambda: sa.and_(column.is_not(None), column != "")
                if nullable else sa.true())


def boolean(true_clause: sa.ColumnElement[bool]) -> Attr:
    """A boolean attribute defined by a condition (``active``: not deleted)."""

    def compare(op: Op, value: Any):
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"  # Entra writes booleans as strings elsewhere too
        if not isinstance(value, bool) or op not in (Op.eq, Op.ne):
            raise invalid("A boolean attribute takes eq or ne with true or false.")
        return true_clause if (value == (op is Op.eq)) else sa.not_(true_clause)

    return Attr(compare, sa.true)


def identifier(column) -> Attr:
    """A resource id: a string in SCIM, an integer column here."""

    def compare(op: Op, value: Any):
        text = str(value)
        number = int(text) if text.isdigit() and len(text) < 10 else None
        if op is Op.eq:
            return column == number if number is not None else sa.false()
        if op is Op.ne:
            return column != number if number is not None else sa.true()
        raise invalid("An id takes eq or ne.")

    return Attr(compare, sa.true)


def moment(column) -> Attr:
    """A dateTime attribute (meta.created, meta.lastModified)."""

    def compare(op: Op, value: Any):
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise invalid(f"{value!r} is not a dateTime (e.g. 2026-01-23T04:56:22Z).") from None
        if when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
        clauses = {Op.eq: column == when, Op.ne: column != when, Op.gt: column > when,
                   Op.ge: column >= when, Op.lt: column < when, Op.le: column <= when}
        if op not in clauses:
            raise invalid(f"A dateTime does not take {op.value}.")
        return clauses[op]

    return Attr(compare, sa.true)


def related(key, owner, attr: Attr) -> Attr:
    """An attribute held in another table: ``key IN (SELECT owner … WHERE attr matches)``,
    so each side uses its own index. ``ne`` is "not equal", rows without one included."""

    def compare(op: Op, value: Any):
        if op is Op.ne:
            return ~compare(Op.eq, value)
        return key.in_(sa.select(owner).where(attr.compare(op, value)))

    return Attr(compare, lambda: key.in_(sa.select(owner).where(attr.present())))


def constant(value: str) -> Attr:
    """A sub-attribute every value has the same of (the type "work" of the one e-mail)."""

    def compare(op: Op, other: Any):
        text = _string_value(op, other).lower()
        result = {Op.eq: value == text, Op.ne: value != text, Op.co: text in value,
                  Op.sw: value.startswith(text), Op.ew: value.endswith(text),
                  Op.gt: value > text, Op.ge: value >= text, Op.lt: value < text,
                  Op.le: value <= text}[op]
        return sa.true() if result else sa.false()

    return Attr(compare, sa.true)


class _ToSql(FilterVisitor[sa.ColumnElement[bool]]):
    def __init__(self, attrs: dict[str, Attr], schema: str, prefix: str = ""):
        self.attrs = attrs
        self.schema = schema.lower()
        self.prefix = prefix

    def _attr(self, path: AttrPath) -> Attr:
        if path.uri and path.uri.lower() != self.schema:
            raise invalid(f"Filtering on {path} is not supported.")
        key = self.prefix + path.attr.lower() + (f".{path.sub_attr.lower()}" if path.sub_attr
                                                  else "")
        if key not in self.attrs and f"{key}.value" in self.attrs:
            key += ".value"  # a multi-valued attribute stands for its values (RFC 7644 §3.4.2.2)
        if key not in self.attrs:
            raise invalid(f"Filtering on {str(path)!r} is not supported; the portal filters on "
                          f"{', '.join(sorted(self.attrs))}.")
        return self.attrs[key]

    def visit_comparison(self, node: Comparison):
        if node.value is None:
            raise invalid("Compare with a value, or test presence with pr.")
        return self._attr(node.attr_path).compare(node.op, node.value)

    def visit_present(self, node: Present):
        return self._attr(node.attr_path).present()

    def visit_not(self, node: Not):
        return sa.not_(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr):
        terms = [self.visit(t) for t in node.terms]
        return sa.and_(*terms) if node.op == LogicalOperator.and_ else sa.or_(*terms)

    def visit_value_path(self, node: ValuePath):
        path = node.attr_path
        if path.sub_attr:
            raise invalid(f"{path} cannot hold a value filter.")
        key = path.attr.lower()
        if not any(k.startswith(key + ".") for k in self.attrs):
            raise invalid(f"Filtering on {key!r} is not supported.")
        return _ToSql(self.attrs, self.schema, key + ".").visit(node.val_filter)


def to_sql(text: str, attrs: dict[str, Attr], schema: str) -> sa.ColumnElement[bool]:
    """Return the WHERE clause of a filter over these attributes (ScimError when invalid)."""
    if len(text) > 2000:
        raise invalid("The filter is too long.")
    try:
        tree = ScimFilter(text).ast
    except InvalidFilterException as error:
        raise invalid(f"Invalid filter: {error}") from None
    except (ValueError, TypeError) as error:
        raise invalid(f"Invalid filter: {error}") from None
    return _ToSql(attrs, schema).visit(tree)
