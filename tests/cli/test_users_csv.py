"""flask users import / export: the same services as the page, with one-line errors."""
import sqlalchemy as sa

from portal.extensions import db
from portal.models import OutboxMessage
from portal.models import User
from tests.builders import csv_bytes

ROWS = [("Ana Lima", "ana@example.com", "Team A"), ("", "nameless@example.com", ""),
        ("Bo", "bo@example.com", "")]


def test_dry_run_prints_the_preview_and_writes_nothing(runner, account, tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes(csv_bytes(ROWS))
    result = runner.invoke(args=["users", "import", str(path), "--account", account.name,
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "3 rows: 2 new, 0 already in this account" in result.output
    assert "Groups that will be created: Team A." in result.output
    assert "line 3: nameless@example.com: Full Name is missing" in result.output
    assert "Dry run: nothing was written." in result.output
    assert db.session.scalar(sa.select(User.id).where(User.email == "ana@example.com")) is None


def test_import_writes_and_reports(runner, account, tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes(csv_bytes(ROWS))
    result = runner.invoke(args=["users", "import", str(path), "--account", account.name])
    assert result.exit_code == 0, result.output
    assert "2 users imported, 0 skipped, 1 invalid row left out." in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "invite", OutboxMessage.account_id == account.id)) == 2


def test_no_invite_sends_nothing(runner, account, tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes(csv_bytes(ROWS))
    before = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
    result = runner.invoke(args=["users", "import", str(path), "--account", account.name,
                                 "--no-invite"])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == before


def test_a_bad_file_or_account_exits_with_one_line(runner, account, tmp_path):
    path = tmp_path / "book.csv"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    result = runner.invoke(args=["users", "import", str(path), "--account", account.name])
    assert result.exit_code == 1
    assert "not a CSV file" in result.output
    result = runner.invoke(args=["users", "import", str(path), "--account", "Nobody"])
    assert result.exit_code == 1 and "No account named 'Nobody'" in result.output


def test_export_writes_the_csv_to_a_file_or_stdout(runner, account, tmp_path):
    path = tmp_path / "out.csv"
    result = runner.invoke(args=["users", "export", "--account", account.name, "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert "Exported 1 user (users-" in result.output
    assert path.read_bytes().decode("utf-8-sig").startswith('"Full Name","Email"')
    result = runner.invoke(args=["users", "export", "--account", account.name])
    assert account.admin.user.email in result.output


def test_update_read_as_and_rejected_rows_from_the_command_line(runner, account, tmp_path):
    from tests.builders import make_user

    make_user(account, name="Ana Old", email="ana@example.com")
    path = tmp_path / "people.csv"
    path.write_bytes("Full Name;Email\r\nAna Lima;ana@example.com\r\nŁucja Šimić;x\r\n"
                     .encode("cp1250"))
    rejected = tmp_path / "rejected.csv"
    result = runner.invoke(args=["users", "import", str(path), "--account", account.name,
                                 "--update", "--read-as", "Windows-1250",
                                 "--rejected", str(rejected)])
    assert result.exit_code == 0, result.output
    assert "line 2: ana@example.com: Full Name: Ana Old → Ana Lima" in result.output
    assert "0 users imported, 1 updated, 0 skipped, 1 invalid row left out." \
        in result.output
    assert rejected.read_bytes().decode("utf-8-sig").startswith(
        "Full Name,Email,Reason\r\nŁucja Šimić,x,")


def test_imports_are_listed_and_undone_from_the_command_line(runner, account, tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes(csv_bytes(ROWS))
    runner.invoke(args=["users", "import", str(path), "--account", account.name])
    listing = runner.invoke(args=["users", "imports", "--account", account.name])
    assert listing.exit_code == 0, listing.output
    import_id, _when, who, filename, summary, state = listing.output.strip().split("\t")
    assert (who, filename, state) == ("operator (command line)", "people.csv", "can be undone")
    assert summary.startswith("2 users imported")
    undo = runner.invoke(args=["users", "undo-import", import_id, "--account", account.name,
                               "--yes"])
    assert undo.exit_code == 0, undo.output
    assert "Undo import will remove 2 people it added" in undo.output
    assert "Import undone: 2 removed" in undo.output
    again = runner.invoke(args=["users", "undo-import", import_id, "--account", account.name,
                                "--yes"])
    assert again.exit_code == 1 and "already undone" in again.output
