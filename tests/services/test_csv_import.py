"""CSV import: reading every dialect, refusing hostile files, preview statuses, set-wise import."""
import codecs
import io
import re
import unicodedata
import zipfile

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import ActionToken
from portal.models import AuditEvent
from portal.models import Group
from portal.models import GroupMember
from portal.models import Membership
from portal.models import OutboxMessage
from portal.models import User
from portal.services import csv_check
from portal.services import csv_import
from portal.services import invitations
from portal.services import mail
from portal.services import outbox
from portal.services import tokens
from portal.services.errors import ServiceError
from tests.builders import csv_bytes
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_user

TABLES = (User, Membership, Group, GroupMember, ActionToken, OutboxMessage)


def counts() -> dict:
    return {m.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(m))
            for m in TABLES}


def statuses(preview) -> list[tuple[int, str, str]]:
    return [(row.line, row.status, row.reason) for row in preview.rows]


def refused(actor, data: bytes) -> str:
    before = counts()
    with pytest.raises(ServiceError) as error:
        csv_check.preview_csv(actor, data)
    assert error.value.field == "file"
    with pytest.raises(ServiceError):
        csv_import.import_csv(actor, data)
    assert counts() == before
    return error.value.message


# Reading: charsets, dialects, headers

def test_headers_match_in_any_order_and_case_and_unknown_columns_are_ignored(account):
    data = csv_bytes(
        [("ana@example.com", "Team A", "admin", "1", "Ana Lima")],
        header=("E-MAIL", "groups", "role", "is_admin", "full NAME"),
    )
    preview = csv_check.preview_csv(account.admin, data)
    assert statuses(preview) == [(2, "new", "")]
    assert preview.rows[0].name == "Ana Lima"
    assert preview.ignored == ["role", "is_admin"]
    csv_import.import_csv(account.admin, data)
    membership = db.session.scalar(
        sa.select(Membership).join(User, User.id == Membership.user_id)
        .where(User.email == "ana@example.com"))
    assert membership.role == "member"  # a "role" column assigns nothing (T08)


def test_utf8_with_bom_is_read_and_the_bom_is_not_part_of_the_first_header(account):
    data = codecs.BOM_UTF8 + "Email,Full Name\nzoe@example.com,Zoë Ørsted\n".encode()
    preview = csv_check.preview_csv(account.admin, data)
    assert preview.encoding == "UTF-8"
    assert [(r.email, r.name, r.status) for r in preview.rows] == [
        ("zoe@example.com", "Zoë Ørsted", "new")]


def test_utf16_with_bom_is_read(account):
    data = "Full Name\tEmail\nŁucja Żak\tlucja@example.com\n".encode("utf-16")
    preview = csv_check.preview_csv(account.admin, data)
    assert preview.encoding == "UTF-16"
    assert preview.delimiter == "\t"
    assert preview.rows[0].name == "Łucja Żak"


def test_an_excel_file_in_windows_1252_with_semicolons_is_read(account):
    text = ("Full Name;Email;Groups\r\n"
            "Renée Müller;renee@example.com;Küche; Café\r\n"
            "José Núñez;jose@example.com;Café\r\n"
            "François Ærø;francois@example.com;\r\n")
    data = text.encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    preview = csv_check.preview_csv(account.admin, data)
    assert preview.delimiter == ";"
    assert preview.encoding == "Windows-1252"
    # "Küche; Café" unquoted in a ;-file is two cells: that row is ragged, the rest read right.
    assert [(r.name, r.status) for r in preview.rows] == [
        ("Renée Müller", "invalid"), ("José Núñez", "new"), ("François Ærø", "new")]
    assert preview.new_groups == ["Café"]


def test_excel_sep_line_and_mixed_line_endings_are_read(account):
    data = (b"sep=|\r\nFull Name|Email\rAna|ana@example.com\nBo|bo@example.com\r\n\r\n"
            b"Cy|cy@example.com")
    preview = csv_check.preview_csv(account.admin, data)
    assert preview.delimiter == "|"
    assert [(r.line, r.email) for r in preview.rows] == [
        (3, "ana@example.com"), (4, "bo@example.com"), (6, "cy@example.com")]


def test_quoted_values_may_hold_delimiters_quotes_and_line_breaks(account):
    data = csv_bytes([
        ("Müller, Ana", "ana@example.com", "Team A; Team B"),
        ('Bo "the boss"\nBoss', "bo@example.com", ""),
        ("Cy", "cy@example.com", ""),
    ])
    preview = csv_check.preview_csv(account.admin, data)
    assert [(r.line, r.name, r.groups) for r in preview.rows] == [
        (2, "Müller, Ana", ("Team A", "Team B")),
        (3, 'Bo "the boss" Boss', ()),
        (5, "Cy", ()),
    ]


# Hostile and broken files: a clear message, nothing written

def test_an_empty_file_is_refused(account):
    assert refused(account.admin, b"") == "The file is empty."
    assert refused(account.admin, b"  \r\n\r\n") == "The file is empty."


def test_a_header_without_rows_is_refused(account):
    assert "no rows" in refused(account.admin, b"Full Name,Email\r\n")


def test_a_file_without_an_email_column_is_refused(account):
    message = refused(account.admin, b"Name,Mail address\nAna,ana@example.com\n")
    assert "Email not found" in message


def test_a_repeated_header_is_refused(account):
    message = refused(account.admin, b"Full Name,Email,E-mail\nAna,a@example.com,b@example.com\n")
    assert "appears twice" in message


def test_a_broken_workbook_is_refused_with_how_to_save_it_again(account):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as workbook:
        workbook.writestr("[Content_Types].xml", "<Types/>")
        workbook.writestr("xl/workbook.xml", "<workbook/>")
    message = refused(account.admin, buffer.getvalue())
    assert message.startswith("This Excel workbook (.xlsx) could not be read")
    assert "save it again" in message


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + bytes(200),  # a PNG renamed to .csv
    bytes.fromhex("D0CF11E0A1B11AE1") + bytes(600),  # an old .xls
    bytes(range(256)) * 8,
])
def test_binary_files_are_refused(account, data):
    assert "not a CSV" in refused(account.admin, data) or "not a text" in refused(
        account.admin, data)


def test_an_unterminated_quote_is_refused_not_swallowed(account):
    rows = "".join(f"User {n},user{n}@example.com\n" for n in range(10_000))
    data = f'Full Name,Email\nAna,"ana@example.com\n{rows}'.encode()
    assert "Line 2: " in refused(account.admin, data)
    assert "never closed" in refused(account.admin, data)
    short = b'Full Name,Email\nAna,"ana@example.com\nBo,bo@example.com\n'
    assert refused(account.admin, short).startswith("Line 2: a quoted value is never closed")


def test_a_huge_field_is_refused_with_its_line(account):
    data = b'Full Name,Email\nAna,ana@example.com\n"' + b"x" * 200_000 + b'",b@example.com\n'
    assert refused(account.admin, data).startswith("Line 3: a value is longer than 131,072")


def test_a_huge_line_without_newline_is_refused(account):
    data = b"Full Name,Email\n" + b"y" * 5_000_000
    assert refused(account.admin, data).startswith("Line 2: a value is longer")


@pytest.mark.config(IMPORT_MAX_ROWS=3)
def test_the_row_limit_is_exact(account):
    three = csv_bytes([(f"U {n}", f"u{n}@example.com", "") for n in range(3)])
    assert len(csv_check.preview_csv(account.admin, three).rows) == 3
    four = csv_bytes([(f"U {n}", f"u{n}@example.com", "") for n in range(4)])
    assert "more than 3 rows" in refused(account.admin, four)


# Row by row

def test_preview_gives_every_row_its_status_and_writes_nothing(account):
    other = make_account()
    make_user(other, name="Elsewhere", email="elsewhere@example.com")
    make_user(account, email="here@example.com")
    gone = make_user(account, email="gone@example.com")
    gone.deleted_at = gone.created_at
    db.session.commit()
    make_group(account, "Existing")
    data = csv_bytes([
        ("New Person", "new@example.com", "Existing; Fresh"),
        ("Elsewhere Person", "elsewhere@example.com", ""),
        ("Here", "here@example.com", "Skipped Group"),
        ("Gone", "gone@example.com", ""),
        ("", "noname@example.com", ""),
        ("No Mail", "", ""),
        ("Bad Mail", "bad@", ""),
    ])
    before = counts()
    preview = csv_check.preview_csv(account.admin, data)
    assert counts() == before
    assert [(r.line, r.status) for r in preview.rows] == [
        (2, "new"), (3, "new"), (4, "skip"), (5, "skip"), (6, "invalid"), (7, "invalid"),
        (8, "invalid")]
    labels = [r.label for r in preview.rows]
    # A person of another account reads exactly as a new address (DESIGN §1).
    assert labels[1] == labels[0] == "new" and preview.rows[1].note == preview.rows[0].note
    assert other.name not in " ".join(labels + [r.note for r in preview.rows])
    assert labels[2] == "already in this account (skipped)"
    assert "restore" in preview.rows[3].note
    assert labels[4] == "Full Name is missing"
    assert labels[5] == "Email is missing"
    assert labels[6].startswith("That e-mail address is not valid")
    assert preview.new_groups == ["Fresh"]
    assert preview.summary().startswith("7 rows: 2 new, 2 already")


def test_ragged_rows_are_invalid_and_do_not_block_the_others(account):
    data = (b"Full Name,Email,Groups\nAna,ana@example.com,A,extra\nBo,bo@example.com\n"
            b"Cy,cy@example.com,\n")
    preview = csv_check.preview_csv(account.admin, data)
    assert [(r.status, r.email) for r in preview.rows] == [
        ("invalid", "ana@example.com"), ("invalid", "bo@example.com"), ("new", "cy@example.com")]
    assert preview.rows[0].reason.startswith("has 4 values but the header has 3 columns")
    result = csv_import.import_csv(account.admin, data)
    assert (result.imported, result.invalid) == (1, 2)


@pytest.mark.parametrize("name,email", [
    ("Alice", "ali\x00ce@example.com"),
    ("Bob\x00", "bob@example.com"),
    ("Bo\x07b", "bob@example.com"),
    ("Bob", "bob@example.com\r\nBcc: x@example.com"),
])
def test_nul_and_control_characters_make_the_row_invalid(account, name, email):
    preview = csv_check.preview_csv(account.admin, csv_bytes([(name, email, "")]))
    assert preview.rows[0].status == "invalid"
    assert "control characters" in preview.rows[0].reason or "not valid" in preview.rows[0].reason
    assert csv_import.import_csv(account.admin, csv_bytes([(name, email, "")])).imported == 0


def test_duplicates_and_look_alikes_are_reported_and_one_user_is_made(account):
    nfd = unicodedata.normalize("NFD", "josé@example.com")
    data = csv_bytes([
        ("Alice", "Alice@Example.com", ""),
        ("Alice again", "alice@example.com", ""),
        ("Alice twice", "Alice@Example.com", ""),
        ("José", "josé@example.com", ""),
        ("José NFD", nfd, ""),
        ("Fullwidth", "alice＠example.com", ""),
        ("Cyrillic", "аlice@example.com", ""),
    ])
    preview = csv_check.preview_csv(account.admin, data)
    assert statuses(preview) == [
        (2, "new", ""),
        (3, "invalid", "differs only in case from line 2"),
        (4, "invalid", "duplicate of line 2"),
        (5, "new", ""),
        (6, "invalid", "duplicate of line 5"),
        (7, "invalid", statuses(preview)[5][2]),
        (8, "new", ""),
    ]
    assert "not valid" in preview.rows[5].reason
    assert "look-alike" in preview.rows[6].note
    result = csv_import.import_csv(account.admin, data)
    assert result.imported == 3
    assert db.session.scalar(
        sa.select(sa.func.count()).where(User.email == "alice@example.com")) == 1


def test_group_names_are_checked_and_deduplicated(account):
    data = csv_bytes([("Ana", "ana@example.com", "Team A; team a ;  Team   B;;"),
                      ("Bo", "bo@example.com", "x" * 121)])
    preview = csv_check.preview_csv(account.admin, data)
    assert preview.rows[0].groups == ("Team A", "Team B")
    assert preview.rows[1].reason.startswith("Groups: The group name is longer")


# Importing

def test_import_writes_users_memberships_groups_and_invitations_in_one_go(account, smtp):
    make_group(account, "Team A")
    data = csv_bytes([("Ana Lima", "ana@example.com", "Team A; Team B"),
                      ("Bo Berg", "bo@example.com", "Team B"),
                      ("Cy", "cy@example.com", "")])
    result = csv_import.import_csv(account.admin, data)
    assert result.summary() == "3 users imported, 0 skipped."
    assert result.groups_created == ["Team B"]
    members = dict(db.session.execute(
        sa.select(User.email, sa.func.count(GroupMember.group_id))
        .join(Membership, Membership.user_id == User.id)
        .outerjoin(GroupMember, GroupMember.membership_id == Membership.id)
        .where(Membership.account_id == account.id).group_by(User.email)).all())
    assert members == {account.admin.user.email: 0, "ana@example.com": 2, "bo@example.com": 1,
                       "cy@example.com": 0}
    events = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "users.imported")).all()
    assert len(events) == 1 and events[0].details["imported"] == 3
    messages = db.session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.kind == "invite").order_by(OutboxMessage.id)).all()
    assert [m.to_addr for m in messages] == ["ana@example.com", "bo@example.com", "cy@example.com"]
    assert messages[0].membership_id is not None and messages[0].body_text is None
    assert outbox.deliver_due().sent == 3
    received = smtp.to("ana@example.com")[0]
    assert received.subject == f"You are invited to {account.name}"
    assert "Hello Ana Lima" in received.text and account.admin.user.name in received.text
    raw = re.search(r"/invite/([\w-]+)", received.text).group(1)
    stored = db.session.scalars(sa.select(ActionToken.token_hash)).all()
    assert raw not in stored and tokens.digest(raw) in stored
    membership = invitations.accept_invitation(raw, "a truly unguessable phrase 42")
    assert membership.invite_state == "active"


def test_a_person_from_another_account_is_invited_under_the_typed_name(account):
    other = make_account()
    person = make_user(other, name="Kept Name", email="kept@example.com")
    users_before = db.session.scalar(sa.select(sa.func.count()).select_from(User))
    data = csv_bytes([("Other Name", "KEPT@example.com", "Team")])
    result = csv_import.import_csv(account.admin, data)
    assert result.imported == 1 and result.summary() == "1 user imported, 0 skipped."
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == users_before
    db.session.refresh(person.user)
    assert person.user.name == "Kept Name" and person.user.password_hash is not None
    link = db.session.scalar(sa.select(Membership).where(
        Membership.user_id == person.user_id, Membership.account_id == account.id))
    # Invited as anyone else, shown and sorted under the name the file gave, until they accept.
    assert link.invite_state == "invited"
    assert (link.shown_name, link.sort_name) == ("Other Name", "other name")
    message = db.session.scalar(sa.select(OutboxMessage).where(
        OutboxMessage.to_addr == "kept@example.com", OutboxMessage.account_id == account.id))
    assert message.kind == "invite"
    text, _html = mail.bodies(message)
    assert "Other Name" in text and "Kept Name" not in text and mail.HIDDEN_LINK in text


def test_only_the_selected_lines_are_imported(account):
    data = csv_bytes([(f"User {n}", f"u{n}@example.com", "") for n in range(5)])
    result = csv_import.import_csv(account.admin, data, lines=[3, 5, 99])
    assert result.imported == 2
    emails = set(db.session.scalars(sa.select(User.email)))
    assert {"u1@example.com", "u3@example.com"} <= emails
    assert not {"u0@example.com", "u2@example.com", "u4@example.com"} & emails
    with pytest.raises(ServiceError, match="Select at least one row"):
        csv_import.import_csv(account.admin, data, lines=[])


def test_without_invitations_no_mail_and_no_link_is_made(account):
    before = counts()
    result = csv_import.import_csv(account.admin, csv_bytes([("Ana", "ana@example.com", "")]),
                                   invite=False)
    assert (result.imported, result.invited) == (1, 0)
    after = counts()
    assert after["OutboxMessage"] == before["OutboxMessage"]
    assert after["ActionToken"] == before["ActionToken"]


def test_importing_again_skips_everyone_and_writes_nothing_new(account):
    data = csv_bytes([("Ana", "ana@example.com", "A"), ("Bo", "bo@example.com", "B")])
    csv_import.import_csv(account.admin, data)
    before = counts()
    result = csv_import.import_csv(account.admin, data)
    assert result.summary() == "0 users imported, 2 skipped."
    assert counts() == before


def test_a_failure_half_way_leaves_the_database_as_it_was(account, monkeypatch):
    data = csv_bytes([(f"User {n}", f"u{n}@example.com", "Team") for n in range(50)])
    before = counts()

    def crash(*_args):
        raise RuntimeError("the disk is full")

    # After users, memberships, groups and group memberships are written; before the mail.
    monkeypatch.setattr(csv_import, "_queue_mails", crash)
    with pytest.raises(RuntimeError):
        csv_import.import_csv(account.admin, data)
    db.session.rollback()
    assert counts() == before
    monkeypatch.undo()
    assert csv_import.import_csv(account.admin, data).imported == 50
    assert csv_import.import_csv(account.admin, data).skipped == 50


@pytest.mark.database("sqlite")  # SQLite's transaction handling, in both runs
def test_an_import_runs_in_a_real_transaction_on_sqlite(account, app):
    assert db.engine.dialect.name == "sqlite"
    seen = []
    sa.event.listen(db.engine, "before_cursor_execute",
                    lambda *args: seen.append(args[2].split()[0].upper()))
    csv_import.import_csv(account.admin, csv_bytes([("Ana", "ana@example.com", "")]))
    assert "BEGIN" in seen and seen.index("BEGIN") < seen.index("INSERT")


def test_two_overlapping_imports_at_once_make_each_person_once(app, account):
    import threading

    first = csv_bytes([(f"User {n}", f"u{n}@example.com", "Team") for n in range(0, 300)])
    second = csv_bytes([(f"User {n}", f"u{n}@example.com", "Team") for n in range(200, 500)])
    membership_id = account.admin.id
    outcomes = []

    def run(data):
        with app.app_context():
            actor = db.session.get(Membership, membership_id)
            try:
                outcomes.append(csv_import.import_csv(actor, data).imported)
            except ServiceError as error:  # PostgreSQL: the loser is told, nothing half-done
                outcomes.append(error.message)

    threads = [threading.Thread(target=run, args=(data,)) for data in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    db.session.commit()
    emails = db.session.scalars(sa.select(User.email).where(User.email.like("u%@example.com")))
    emails = list(emails)
    assert len(emails) == len(set(emails))
    assert all(isinstance(o, int) or "someone else" in o for o in outcomes), outcomes
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Group)) == 1


def test_imported_users_carry_the_lists_sort_keys(account):
    csv_import.import_csv(account.admin, csv_bytes([("Zoë Ørsted", "zoe@example.com", "")]))
    row = db.session.execute(
        sa.select(Membership.sort_name, Membership.sort_email, User.name)
        .join(User, User.id == Membership.user_id).where(User.email == "zoe@example.com")).one()
    expected = db.session.scalar(sa.select(sa.func.lower(User.name)).where(
        User.email == "zoe@example.com"))
    assert row == (expected, "zoe@example.com", "Zoë Ørsted")
