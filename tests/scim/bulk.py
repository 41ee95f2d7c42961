"""Many people at once for SCIM tests and benchmarks (plain INSERTs; the triggers keep the
sort keys and the search index, as for the CSV import)."""
import itertools

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Membership
from portal.models import User

_batches = itertools.count(1)


def add_people(account, count: int, prefix: str | None = None) -> list[int]:
    """Add ``count`` invited members to the account; return their membership ids in order."""
    prefix = prefix or f"bulk{next(_batches)}"
    emails = [f"{prefix}.{n}@example.com" for n in range(count)]
    for start in range(0, count, 5000):
        chunk = emails[start:start + 5000]
        db.session.execute(sa.insert(User), [
            {"email": e, "name": f"Person {e.split('@')[0]}", "version": 1} for e in chunk])
    user_ids = dict(db.session.execute(
        sa.select(User.email, User.id).where(User.email.like(f"{prefix}.%"))).all())
    for start in range(0, count, 5000):
        chunk = emails[start:start + 5000]
        db.session.execute(sa.insert(Membership), [
            {"account_id": account.id, "user_id": user_ids[e], "role": "member",
             "invite_state": "invited"} for e in chunk])
    db.session.commit()
    found = dict(db.session.execute(
        sa.select(Membership.user_id, Membership.id)
        .where(Membership.account_id == account.id,
               Membership.user_id.in_(sa.select(User.id).where(User.email.like(f"{prefix}.%"))))
    ).all())
    return [found[user_ids[e]] for e in emails]
