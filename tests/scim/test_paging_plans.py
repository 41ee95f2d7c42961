"""A SCIM list page that misses its continuation (another worker served the page before, or
the process restarted) pays an OFFSET; on PostgreSQL it must not also pay a JIT compilation.

The visibility check ``deleted_at IS NULL OR NOT EXISTS (a SCIM DELETE's stamp)`` was costed
by PostgreSQL as a probe per row, so a page deep into 100,000 users was estimated above
``jit_above_cost`` and compiled with LLVM on every such request (OFFSET 90,000: 0.75 s, of
which 0.44 s compiling). As ``NOT EXISTS`` alone (the same rows) it is an anti-join costed by
what it reads. Checked with EXPLAIN on fresh statistics; the plan is PostgreSQL's (SQLite has
no JIT and keeps the OR, which skips the probe for live rows), so it runs on PostgreSQL in both
runs (the SQLite run's cluster from .ci/pg.sh). About 3 s.
"""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.services import scim as scim_service

USERS = 30_000


@pytest.mark.database("postgresql")
def test_a_cold_page_deep_into_the_account_is_not_costed_for_jit(app, account, scim):
    assert db.engine.dialect.name == "postgresql"
    db.session.execute(sa.text(
        "INSERT INTO users (email, name, must_change_password, failed_logins, version, "
        "created_at) SELECT 'p' || n || '@plan.example', 'P ' || n, false, 0, 1, now() "
        "FROM generate_series(1, :n) AS n"), {"n": USERS})
    db.session.execute(sa.text(
        "INSERT INTO memberships (account_id, user_id, role, invite_state, created_at, "
        "deleted_at) SELECT :account, id, 'member', 'active', now(), "
        "CASE WHEN id % 100 = 0 THEN now() END FROM users WHERE email LIKE '%@plan.example'"),
        {"account": account.id})
    # Users a provider created: each has its link (externalId), as at 100,000 in the bench.
    db.session.execute(sa.text(
        "INSERT INTO scim_user_links (membership_id, external_id, modified_at) "
        "SELECT id, 'e' || id, now() FROM memberships WHERE account_id = :account"),
        {"account": account.id})
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
        threshold = float(conn.exec_driver_sql("SHOW jit_above_cost").scalar())
    plans = []

    def explain(conn, cursor, statement, parameters, _context, _executemany):
        if statement.lstrip().startswith("SELECT memberships.id") and "OFFSET" in statement:
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plans.append(cursor.fetchone()[0][0]["Plan"])

    scim_service._CONTINUATIONS.clear()
    sa.event.listen(db.engine, "before_cursor_execute", explain)
    try:
        page = scim.get("Users", query={"startIndex": USERS - 99, "count": 100}).get_json()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", explain)

    assert len(page["Resources"]) == 100 and page["totalResults"] == USERS + 1
    assert len(plans) == 1
    assert plans[0]["Total Cost"] < threshold, plans[0]
