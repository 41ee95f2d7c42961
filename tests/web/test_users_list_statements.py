"""What one Users page reads: each request's statements, counted (issue 16, item 7).

On PostgreSQL every statement is a round trip, and the invitations summary a scan of the
account's memberships (the invitation times are in no index there): a search keystroke, a
filter or a page link (htmx: the rows and the saved views) must not read what only the whole
page shows.
"""
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from tests.builders import make_group
from tests.builders import make_user

HX = {"HX-Request": "true"}
LIST = "/admin/participants/users/"


def statements_of(client, url: str, **kwargs) -> list[str]:
    """The SQL statements (BEGIN left out) the app runs to answer one GET of ``url``."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany):
        seen.append(re.sub(r"\s+", " ", statement).strip())

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = client.get(url, **kwargs)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return [statement for statement in seen if statement.upper() != "BEGIN"]


@pytest.fixture
def listed(admin, account):
    team = make_group(account, "Night shift")
    for n in range(3):
        make_user(account, name=f"Person {n}", email=f"p{n}@example.com", group_ids=[team.id])
    admin.get(LIST)  # the session's first touch (last seen) is not what a page costs
    return admin, team


@pytest.mark.parametrize("query", ["", "?q=person", "?q=pe", "?group={team}", "?page=2",
                                   "?invitation=expired"])
def test_an_htmx_list_request_reads_neither_the_summary_nor_the_group_choices(listed, query):
    admin, team = listed
    statements = statements_of(admin, LIST + query.format(team=team.id), headers=HX)
    # The summary's counts stop at SUMMARY_CAP (LIMIT); the list's own count never does.
    summary = [s for s in statements if "invite_state" in s and " LIMIT " in s
               and s.lower().startswith("select count(")]
    choices = [s for s in statements if s.startswith("SELECT groups.id, groups.name FROM groups")]
    assert summary == [] and choices == [], statements
    # The session (device, second-factor rule, acting membership), the page (count and ids,
    # rows, their groups) and the saved views: nothing else.
    assert len(statements) <= 8, "\n".join(statements)


def test_the_whole_page_still_shows_the_summary_and_the_group_choices(listed, account):
    admin, team = listed
    statements = statements_of(admin, LIST)
    # Capped index walks (SQLite), or one pass with the list's count (PostgreSQL).
    assert any("invite_expires_at <=" in s for s in statements)
    assert any(s.startswith("SELECT groups.id, groups.name FROM groups") for s in statements)
    html = admin.get(LIST).get_data(as_text=True)
    assert f'<option value="{team.id}">Night shift</option>' in html
    fragment = admin.get(LIST + "?q=person", headers=HX).get_data(as_text=True)
    assert "Person 1" in fragment and 'id="filters"' not in fragment


@pytest.mark.database("postgresql")
def test_the_whole_list_on_postgresql_counts_its_users_and_the_summary_in_one_pass(listed,
                                                                                   account):
    admin, _team = listed
    statements = statements_of(admin, LIST)
    counts = [s for s in statements if s.lower().startswith("select count(")]
    # One scan of the account's memberships: its live users, expired and refused invitations.
    assert len(counts) == 1 and "FILTER (WHERE" in counts[0], "\n".join(counts)
    html = admin.get(LIST).get_data(as_text=True)
    assert all(f"Person {n}" in html for n in range(3)), html


@pytest.mark.parametrize("expired", [2, 4])
def test_the_summary_of_the_whole_list_reads_as_before(admin, account, expired, monkeypatch):
    """Counted in the one pass (PostgreSQL) or by the capped index walks (SQLite), the top of
    Users says the same: the exact number below the cap, "3+" at it."""
    from portal.models import Membership
    from portal.models import utcnow
    from portal.services import invitation_states

    monkeypatch.setattr(invitation_states, "SUMMARY_CAP", 3)
    for n in range(expired):
        make_user(account, name=f"Late {n}", email=f"late{n}@example.com", password=None)
    db.session.execute(sa.update(Membership).where(Membership.invite_state == "invited")
                       .values(invite_expires_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    html = admin.get(LIST).get_data(as_text=True)
    shown = "3+ invitations expired" if expired > 3 else "2 invitations expired"
    assert shown in html, html[html.find('id="invitations"'):][:400]
