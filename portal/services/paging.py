"""One page of a list: count the matching ids, fetch only the rows of the page asked for."""
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from portal.extensions import db


@dataclass
class Page:
    rows: list[Any]
    total: int
    page: int
    size: int
    q: str = ""

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))


def fetch(ids: sa.Select, rows: sa.Select, page: int, size: int, q: str = "",
          total: int | None = None) -> Page:
    """Count ``ids`` (unless the caller knows ``total``) and return one page of ``rows``.

    ``rows`` is ordered and restricted to those ids. A page number past the end shows the last
    page, so deleting the last row of a page still shows something.
    """
    if total is None:
        total = db.session.scalar(sa.select(sa.func.count()).select_from(ids.subquery()))
    page = min(max(1, page), max(1, math.ceil(total / size)))
    found = db.session.scalars(rows.limit(size).offset((page - 1) * size))
    return Page(rows=list(found), total=total, page=page, size=size, q=q)
