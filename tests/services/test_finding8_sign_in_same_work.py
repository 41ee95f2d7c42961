"""Issue 11, finding 8: a failed sign-in does the same work for a known and an unknown e-mail.

Not a timed test: it compares the SQL each failure runs (a failed attempt used to be written
only for known people, about 20 ms of commit). The time itself is measured by
tests/bench/bench_login_timing.py.
"""
import re

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.services import auth
from portal.services.errors import ServiceError


def statements_of_a_failed_sign_in(email: str) -> list[str]:
    """The SQL a wrong-password sign-in for ``email`` runs, literals and ids taken out."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany):
        seen.append(re.sub(r"\s+", " ", statement).strip())

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with pytest.raises(ServiceError, match="e-mail or password is wrong"):
            auth.authenticate(email, "not the right password")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def test_known_and_unknown_addresses_run_the_same_statements(account):
    known = account.admin.user.email
    statements_of_a_failed_sign_in("warm.up@example.com")  # caches alike for both
    assert statements_of_a_failed_sign_in(known) == statements_of_a_failed_sign_in(
        "nobody.here@example.com"
    )


def test_an_unknown_address_leaves_a_failed_attempt_in_the_trail_too(account):
    for email in (account.admin.user.email, "nobody.here@example.com"):
        with pytest.raises(ServiceError):
            auth.authenticate(email, "not the right password")
    events = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "login.failed").order_by(AuditEvent.id)
    ).all()
    assert [e.subject_user_id for e in events] == [account.admin.user_id, None]
    assert "nobody.here" not in str([e.details for e in events])  # typed addresses are not kept
