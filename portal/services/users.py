"""Users of an account: the list query."""
from dataclasses import dataclass

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Membership
from portal.models import User
from portal.services import scope

PAGE_SIZE = 50


@dataclass
class UserPage:
    rows: list[Membership]
    total: int
    page: int


def list_users(actor, page: int = 1) -> UserPage:
    """Return one page of the account's live memberships, by name."""
    base = scope.in_account(sa.select(Membership), Membership, actor).where(
        Membership.deleted_at.is_(None)
    )
    total = db.session.scalar(sa.select(sa.func.count()).select_from(base.subquery()))
    rows = db.session.scalars(
        base.join(User, User.id == Membership.user_id)
        .order_by(User.name, User.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    return UserPage(rows=list(rows), total=total, page=page)
