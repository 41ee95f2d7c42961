"""Operator commands: what they print, what they change, and their refusals."""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Account
from portal.models import Group
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import Taskstream
from portal.services import passwords

STRONG = "correct horse battery staple"


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_create_account_with_its_first_admin(runner):
    result = runner.invoke(args=["create-account", "Acme", "--admin-email", "Boss@Acme.example",
                                 "--admin-name", "Bo Ss", "--password", STRONG])
    assert result.exit_code == 0, result.output
    assert "Created account 'Acme' with admin boss@acme.example." in result.output
    membership = db.session.scalar(sa.select(Membership))
    assert membership.role == "admin" and membership.invite_state == "active"
    assert passwords.verify(membership.user, STRONG)


def test_create_account_prompts_for_the_password(runner):
    result = runner.invoke(args=["create-account", "Acme", "--admin-email", "a@acme.example"],
                           input=f"{STRONG}\n{STRONG}\n")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args, message", [
    (["Acme", "--admin-email", "not-an-email", "--password", STRONG], "not valid"),
    (["Acme", "--admin-email", "a@acme.example", "--password", "short"], "at least 12"),
    (["  ", "--admin-email", "a@acme.example", "--password", STRONG], "account name"),
    (["Acme\x00", "--admin-email", "a@acme.example", "--password", STRONG], "printable"),
])
def test_create_account_refuses_bad_input_and_changes_nothing(runner, args, message):
    result = runner.invoke(args=["create-account", *args])
    assert result.exit_code == 1
    assert message in result.output
    assert count(Account) == 0


def test_a_second_account_with_the_same_name_is_refused(runner):
    runner.invoke(args=["create-account", "Acme", "--admin-email", "a@acme.example",
                        "--password", STRONG])
    result = runner.invoke(args=["create-account", "ACME", "--admin-email", "b@acme.example",
                                 "--password", STRONG])
    assert result.exit_code == 1 and "already exists" in result.output


def test_bootstrap_creates_the_demo_once_and_prints_how_to_sign_in(runner):
    result = runner.invoke(args=["bootstrap"])
    assert result.exit_code == 0
    assert "http://portal.test/login?login_hint=admin@example.com" in result.output
    password = result.output.split("Password:")[1].split()[0]
    admin = db.session.scalar(sa.select(Membership).where(Membership.role == "admin"))
    assert passwords.verify(admin.user, password)
    again = runner.invoke(args=["bootstrap"])
    assert "already has an account" in again.output
    assert count(Account) == 1


def test_seed_demo_builds_users_groups_and_taskstreams(runner):
    result = runner.invoke(args=["seed-demo", "--password", STRONG])
    assert result.exit_code == 0, result.output
    assert count(Membership) == 51
    assert count(Group) == 6
    assert count(Taskstream) == 2
    assert count(OutboxMessage) == 50  # one invitation each


def test_accounts_set_changes_the_device_limit(runner):
    runner.invoke(args=["create-account", "Acme", "--admin-email", "a@acme.example",
                        "--password", STRONG])
    result = runner.invoke(args=["accounts", "set", "acme", "--device-limit", "5"])
    assert result.exit_code == 0 and "is now 5" in result.output
    assert db.session.scalar(sa.select(Account.device_limit)) == 5
    bad = runner.invoke(args=["accounts", "set", "acme", "--device-limit", "0"])
    assert bad.exit_code == 1 and "between 1 and 20" in bad.output
    missing = runner.invoke(args=["accounts", "set", "nope", "--device-limit", "2"])
    assert missing.exit_code == 1 and "No account named 'nope'" in missing.output


def test_outbox_deliver_and_list(runner, smtp):
    runner.invoke(args=["create-account", "Acme", "--admin-email", "a@acme.example"],
                  input=f"{STRONG}\n{STRONG}\n")
    runner.invoke(args=["seed-demo", "--password", STRONG])
    listed = runner.invoke(args=["outbox", "list", "--limit", "3"])
    assert listed.output.count("pending") == 3
    delivered = runner.invoke(args=["outbox", "deliver"])
    assert delivered.exit_code == 0
    assert "Outbox: 50 sent, 0 to retry, 0 failed." in delivered.output
    assert len(smtp.messages) == 50


@pytest.mark.config(MAIL_SERVER=None)
def test_outbox_deliver_without_smtp_explains_where_mail_is(runner):
    result = runner.invoke(args=["outbox", "deliver"])
    assert result.exit_code == 0
    assert "/admin/outbox" in result.output
