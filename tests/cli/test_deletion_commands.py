"""`flask users restore` and `flask purge`: what they print, change and refuse."""
from datetime import timedelta

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Membership
from portal.models import User
from portal.models import utcnow
from tests.builders import backdate_deletion
from tests.builders import delete_users
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_user


def deleted_at(membership_id: int):
    db.session.expire_all()
    return db.session.scalar(sa.select(Membership.deleted_at).where(Membership.id == membership_id))


def test_users_restore_brings_a_deleted_user_back(runner, account):
    alice = make_user(account, email="alice@example.com")
    make_group(account, "Drivers", [alice])
    delete_users(account, alice)

    result = runner.invoke(args=["users", "restore", "Alice@Example.com", "--account", account.name])

    assert result.exit_code == 0, result.output
    assert "Restored Alice@Example.com" in result.output
    assert deleted_at(alice.id) is None


def test_users_restore_refuses_with_a_one_line_reason(runner, account):
    live = make_user(account, email="live@example.com")
    old = make_user(account, email="old@example.com")
    delete_users(account, old)
    backdate_deletion(old, utcnow() - timedelta(days=31))
    cases = [
        (["nobody@example.com", "--account", account.name], "no longer recoverable"),
        (["live@example.com", "--account", account.name], "not deleted"),
        (["old@example.com", "--account", account.name], "no longer recoverable"),
        (["live@example.com", "--account", "No Such Account"], "No account named"),
    ]
    for args, message in cases:
        result = runner.invoke(args=["users", "restore", *args])
        assert result.exit_code == 1, result.output
        assert message in result.output
    assert deleted_at(live.id) is None and deleted_at(old.id) is not None


def test_users_restore_never_reaches_into_another_account(runner, account):
    other = make_account("Other")
    theirs = make_user(other, email="theirs@example.com")
    delete_users(other, theirs)

    result = runner.invoke(args=["users", "restore", "theirs@example.com", "--account", account.name])

    assert result.exit_code == 1
    assert deleted_at(theirs.id) is not None


def test_purge_dry_run_prints_counts_and_changes_nothing(runner, account):
    people = [make_user(account) for _ in range(2)]
    delete_users(account, *people)
    later = (utcnow() + timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%S")

    result = runner.invoke(args=["purge", "--dry-run", "--now", later])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Would purge 2 memberships")
    assert "erased 2 people" in result.output
    assert all(deleted_at(m.id) is not None for m in people)


def test_purge_removes_what_is_past_retention_and_a_second_run_removes_nothing(runner, account):
    people = [make_user(account) for _ in range(3)]
    kept = make_user(account)
    delete_users(account, *people, kept)
    backdate_deletion(kept, utcnow())
    for m in people:
        backdate_deletion(m, utcnow() - timedelta(days=30, seconds=5))

    first = runner.invoke(args=["purge", "--batch", "2"])
    second = runner.invoke(args=["purge"])

    assert first.exit_code == 0 and second.exit_code == 0
    assert first.output.startswith("Purged 3 memberships") and "erased 3 people" in first.output
    assert second.output.startswith("Purged 0 memberships") and "0 audit events" in second.output
    assert deleted_at(kept.id) is not None
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 2  # the admin and `kept`


def test_purge_refuses_a_bad_clock_or_batch(runner, app):
    assert runner.invoke(args=["purge", "--now", "yesterday"]).exit_code == 2
    assert runner.invoke(args=["purge", "--batch", "0"]).exit_code == 2
