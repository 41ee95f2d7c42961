"""What one Users page reads: each request's statements, counted (issue 16, item 7).

On PostgreSQL every statement is a round trip, and the invitations summary a scan of the
account's memberships (the invitation times are in no index there): a search keystroke, a
filter or a page link (htmx: the rows and the saved views) must not read what only the whole
page shows.
"""
import re

import pytest
import sqlalchemy as sa

from portal.extensions import db
from tests.builders import make_group
from tests.builders import make_user

HX = {"HX-Request": "true"}
LIST = "/admin/participants/users/"


def statements_of(client, url: str, method: str = "get", **kwargs) -> list[str]:
    """The SQL statements (BEGIN left out) the app runs to answer one request of ``url``."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany):
        seen.append(re.sub(r"\s+", " ", statement).strip())

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = getattr(client, method)(url, **kwargs)
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
    assert any("invite_expires_at <=" in s and " LIMIT " in s for s in statements)
    assert any(s.startswith("SELECT groups.id, groups.name FROM groups") for s in statements)
    html = admin.get(LIST).get_data(as_text=True)
    assert f'<option value="{team.id}">Night shift</option>' in html
    fragment = admin.get(LIST + "?q=person", headers=HX).get_data(as_text=True)
    assert "Person 1" in fragment and 'id="filters"' not in fragment


def is_choices(statement: str) -> bool:
    return statement.startswith("SELECT groups.id, groups.name FROM groups")


def is_summary(statement: str) -> bool:
    return ("invite_state" in statement and " LIMIT " in statement
            and statement.lower().startswith("select count("))


def test_a_bulk_actions_htmx_answer_reads_only_what_its_blocks_show(listed, account):
    """The answer of a bulk action is the rows (and, after Resend Invite to the lapsed, the
    invitations summary) out of band: the group filter's choices are the whole page's only."""
    admin, _team = listed
    waiting = make_user(account, name="Waiting Person", password=None)
    resent = statements_of(admin, LIST + "bulk/resend-invite", "post", headers=HX,
                           data={"ids": [waiting.id], "confirmed": "y"})
    assert not any(is_choices(s) for s in resent), "\n".join(resent)
    assert not any(is_summary(s) for s in resent), "\n".join(resent)
    lapsed = statements_of(admin, LIST + "resend-lapsed", "post", headers=HX,
                           data={"confirmed": "y"})
    assert not any(is_choices(s) for s in lapsed), "\n".join(lapsed)
    assert any(is_summary(s) for s in lapsed), "\n".join(lapsed)  # invitations_oob shows it


def test_a_search_without_matches_is_not_counted_twice(listed):
    """The page's one statement reads the matches with their number (a window count); when
    page 1 is empty there is nothing to count (f01adc0 counted the empty result again)."""
    admin, _team = listed
    statements = statements_of(admin, LIST + "?q=zzqx-nobody", headers=HX)
    counts = [s for s in statements if s.lower().startswith("select count(")]
    assert counts == [], "\n".join(statements)
    assert len(statements) <= 6, "\n".join(statements)
    fragment = admin.get(LIST + "?q=zzqx-nobody", headers=HX).get_data(as_text=True)
    assert "No users match this search." in fragment and "Person 1" not in fragment
