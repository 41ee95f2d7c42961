"""One page of a list: the one page type every list screen gets, whatever it pages through."""
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from portal.extensions import db


@dataclass
class Page:
    """The rows of one page, the number of matches and where this page stands among them."""

    rows: list[Any]
    total: int
    page: int
    size: int
    q: str = ""

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.size + 1 if self.total else 0

    @property
    def last_index(self) -> int:
        return min(self.total, self.page * self.size)


@dataclass
class KeysetPage:
    """One page of a list too long to count or to skip through (the audit trail): its rows and
    the cursors of the pages beside it (the id of this page's first row for the newer page, of
    its last for the older one; None at either end)."""

    rows: list[Any]
    size: int
    newer: int | None = None
    older: int | None = None


def clamp(page: int, total: int, size: int) -> int:
    """Return a page number that exists: a page past the end shows the last one."""
    return min(max(1, page), max(1, math.ceil(total / size)))


def fetch(ids: sa.Select, rows: sa.Select, page: int, size: int, q: str = "",
          total: int | None = None) -> Page:
    """Count ``ids`` (unless the caller knows ``total``) and return one page of ``rows``.

    ``rows`` is ordered and restricted to those ids. A page number past the end shows the last
    page, so deleting the last row of a page still shows something.
    """
    if total is None:
        total = db.session.scalar(sa.select(sa.func.count()).select_from(ids.subquery()))
    page = clamp(page, total, size)
    found = db.session.scalars(rows.limit(size).offset((page - 1) * size))
    return Page(rows=list(found), total=total, page=page, size=size, q=q)


def of_list(items: Sequence[Any], page: int, size: int) -> Page:
    """Return one page of a list already in memory (a CSV preview's rows)."""
    page = clamp(page, len(items), size)
    start = (page - 1) * size
    return Page(rows=list(items[start:start + size]), total=len(items), page=page, size=size)
