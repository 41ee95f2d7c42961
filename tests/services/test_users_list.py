"""The Users list query: search, filters, sorts, pages, and the selection bulk actions use."""

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from portal import create_app
from portal.extensions import db
from portal.models import Membership
from portal.models import User
from portal.models import utcnow
from portal.services import deletion
from portal.services import invitations
from portal.services import users
from portal.services.errors import ServiceError
from portal.services.users import Selection
from portal.services.users import UserFilter
from tests.builders import accepted
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_user
from tests.conftest import TEST_CONFIG


def names(page):
    return [row.name for row in page.rows]


def test_search_matches_any_part_of_the_name_or_email_case_insensitively(account):
    make_user(account, name="Ada Lovelace", email="countess@analytical.example")
    make_user(account, name="Charles Babbage", email="charles@engine.example")
    actor = account.admin
    assert names(users.list_users(actor, UserFilter(q="LOVEL"))) == ["Ada Lovelace"]
    assert names(users.list_users(actor, UserFilter(q="analytical"))) == ["Ada Lovelace"]
    assert names(users.list_users(actor, UserFilter(q="  bab  "))) == ["Charles Babbage"]
    assert users.list_users(actor, UserFilter(q='"; drop table users; --')).total == 0
    assert users.list_users(actor, UserFilter(q="100%_")).total == 0


def test_someone_known_elsewhere_is_found_by_the_name_typed_here_never_by_their_own(account):
    other = make_account()
    make_user(other, name="Grace Hopper", email="grace@navy.example.org")
    make_user(account, name="Amazing Grace", email="amazing@hymns.example.org")
    # Invited here under another name (DESIGN §1): listed and found by that name only.
    invited = invitations.add_person(account.admin, name="Admiral Cobol",
                                     email="grace@navy.example.org")
    actor = account.admin
    assert names(users.list_users(actor, UserFilter(q="admiral"))) == ["Admiral Cobol"]
    assert names(users.list_users(actor, UserFilter(q="grace"))) == ["Admiral Cobol",
                                                                     "Amazing Grace"]
    assert names(users.list_users(actor, UserFilter(q="hopper"))) == []
    # The e-mail is theirs: found by it, once.
    assert names(users.list_users(actor, UserFilter(q="navy.example"))) == ["Admiral Cobol"]
    make_user(other, name="Not Here", email="elsewhere@hymns.example.org")
    everyone = users.list_users(actor, UserFilter(q=".example.org"))
    assert sorted(names(everyone)) == ["Admiral Cobol", "Amazing Grace"]
    assert everyone.total == 2
    # Once they accept, their own name is the one found.
    accepted(invited)
    assert names(users.list_users(actor, UserFilter(q="hopper"))) == ["Grace Hopper"]
    assert names(users.list_users(actor, UserFilter(q="admiral"))) == []
    # A bulk action over "all matching" acts on exactly those.
    selection = Selection(all_matching=True, filter=UserFilter(q="grace"))
    assert users.count_selected(actor, selection) == 2


def test_a_search_past_its_last_page_shows_the_last_one(account):
    for n in range(3):
        make_user(account, name=f"Pat Sample {n}")
    page = users.list_users(account.admin, UserFilter(q="sample"), page=7)
    assert (page.page, page.total, len(page.rows)) == (1, 3, 3)
    assert users.list_users(account.admin, UserFilter(q="nobody-at-all"), page=3).total == 0


def test_one_or_two_letters_match_the_start_of_the_name_or_email(account):
    make_user(account, name="Bo Ek", email="zed@example.com")
    make_user(account, name="Ann Bo", email="bob@example.com")
    make_user(account, name="Xavier", email="x@example.com")
    actor = account.admin
    assert names(users.list_users(actor, UserFilter(q="bo"))) == ["Ann Bo", "Bo Ek"]
    assert names(users.list_users(actor, UserFilter(q="z"))) == ["Bo Ek"]


def test_search_never_finds_people_of_another_account(account):
    other = make_account()
    make_user(other, name="Secret Agent", email="agent@elsewhere.example")
    assert users.list_users(account.admin, UserFilter(q="agent")).total == 0
    assert users.list_users(account.admin, UserFilter(q="ag")).total == 0


def test_group_and_state_filters_combine_with_search(account):
    team = make_group(account, "Night shift")
    make_user(account, name="Grace Night", group_ids=[team.id])
    make_user(account, name="Grace Day")
    make_user(account, name="Grace Invited", group_ids=[team.id], password=None)
    actor = account.admin
    both = users.list_users(actor, UserFilter(q="grace", group_id=team.id))
    assert names(both) == ["Grace Invited", "Grace Night"]
    assert both.groups[both.rows[0].id] == ["Night shift"]
    invited = users.list_users(actor, UserFilter(q="grace", group_id=team.id, state="invited"))
    assert names(invited) == ["Grace Invited"]


def test_a_group_filter_counts_and_pages_its_live_members_of_this_account_only(account):
    team = make_group(account, "Night shift")
    members = [make_user(account, name=f"Member {n:02}", group_ids=[team.id]) for n in range(7)]
    make_user(account, name="Not In It")
    deletion.delete_users(account.admin, Selection(ids=(members[0].id, members[3].id)))
    actor = account.admin
    whole = users.list_users(actor, UserFilter(group_id=team.id))
    assert whole.total == 5
    assert names(whole) == ["Member 01", "Member 02", "Member 04", "Member 05", "Member 06"]
    # Pages of 2 from either end, and a page past the end shows the last one.
    users.PAGE_SIZE, size = 2, users.PAGE_SIZE
    try:
        pages = [names(users.list_users(actor, UserFilter(group_id=team.id), page=n))
                 for n in (1, 2, 3, 9)]
        backwards = names(users.list_users(actor, UserFilter(group_id=team.id), sort="-name",
                                           page=3))
    finally:
        users.PAGE_SIZE = size
    assert pages == [["Member 01", "Member 02"], ["Member 04", "Member 05"], ["Member 06"],
                     ["Member 06"]]
    assert backwards == ["Member 01"]
    # Another account's group (an id typed into the address) shows and counts nobody here.
    other = make_account()
    theirs = make_group(other, "Theirs")
    make_user(other, name="Their Member", group_ids=[theirs.id])
    elsewhere = users.list_users(actor, UserFilter(group_id=theirs.id))
    assert (elsewhere.total, elsewhere.rows) == (0, [])
    assert users.group_sizes(actor, [team.id, theirs.id], scoped=False) == {team.id: 5}


def test_pages_from_either_end_follow_one_order(account):
    for n in range(120):
        make_user(account, name=f"Person {n % 7}", email=f"p{n:03}@example.com", password=None)
    actor = account.admin
    expected = sorted(
        db.session.execute(
            sa.select(Membership.id, User.name).join(User, User.id == Membership.user_id).where(
                Membership.account_id == account.id)
        ).all(),
        key=lambda row: (row.name.lower(), row.id),
    )
    seen = []
    for number in (1, 2, 3):
        seen += [row.id for row in users.list_users(actor, page=number).rows]
    assert seen == [row.id for row in expected]
    assert users.list_users(actor, page=99).page == 3
    backwards = users.list_users(actor, sort="-name", page=3)
    assert [r.id for r in backwards.rows] == [row.id for row in expected[:21]][::-1]


def test_sorting_by_last_seen_puts_people_never_seen_last_when_newest_first(account):
    seen = make_user(account, name="Seen")
    make_user(account, name="Never", password=None)
    db.session.execute(sa.update(Membership).where(Membership.id == seen.id)
                       .values(sort_last_seen=utcnow()))
    db.session.commit()
    newest_first = names(users.list_users(account.admin, sort="-last_seen"))
    oldest_first = names(users.list_users(account.admin, sort="last_seen"))
    assert newest_first[0] == "Seen" and oldest_first[-1] == "Seen"


def test_sort_keys_follow_changes_to_the_person_whoever_writes_them(account):
    member = make_user(account, name="Old Name", email="old@example.com")
    db.session.execute(
        sa.update(User).where(User.id == member.user_id).values(name="Zed New", email="new@example.com")
    )
    db.session.commit()
    db.session.refresh(member)
    assert (member.sort_name, member.sort_email) == ("zed new", "new@example.com")
    assert names(users.list_users(account.admin, UserFilter(q="zed new"))) == ["Zed New"]
    assert users.list_users(account.admin, UserFilter(q="old name")).total == 0


def test_migrations_install_the_search_and_sort_triggers(tmp_path):
    """SQLite's triggers as the migrations make them (the suite's databases use create_all;
    on PostgreSQL test_migrations upgrades): a SQLite file of its own in both runs."""
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=f"sqlite:///{tmp_path / 'migrated.db'}"))
    with app.app_context():
        upgrade()
        account = make_account()
        member = make_user(account, name="Migrated Person")
        member.user.name = "Renamed Person"
        db.session.commit()
        db.session.refresh(member)
        assert member.sort_name == "renamed person"
        assert names(users.list_users(account.admin, UserFilter(q="renamed"))) == ["Renamed Person"]
        db.session.remove()
        db.engine.dispose()


def test_a_selection_of_ids_keeps_only_live_users_of_the_account(account):
    mine = make_user(account)
    theirs = make_user(make_account())
    chosen = Selection(ids=(mine.id, theirs.id, 10**12))
    assert list(db.session.scalars(users.selected_ids(account.admin, chosen))) == [mine.id]
    with pytest.raises(ServiceError, match="Select at least one user"):
        users.selected_ids(account.admin, Selection())


def test_all_matching_selects_the_filter_not_the_page(account):
    for n in range(60):
        make_user(account, name=f"Match {n}", password=None)
    make_user(account, name="Other")
    selection = Selection(all_matching=True, filter=UserFilter(q="match"))
    assert users.count_selected(account.admin, selection) == 60


def test_short_searches_find_deleted_users_in_the_deleted_view(account):
    from portal.services import deletion

    gone = make_user(account, name="Bo Gone")
    deletion.delete_users(account.admin, Selection(ids=(gone.id,)))
    found = db.session.scalars(users.filtered(account.admin, UserFilter(q="bo"), deleted=True))
    assert list(found) == [gone.id]
    assert users.list_users(account.admin, UserFilter(q="bo")).total == 0
