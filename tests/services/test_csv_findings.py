"""Issue 13's findings on the import: spreadsheet encodings, trailing empty cells, an invalid
optional value, workbooks, what was rejected, Update existing users."""
import csv
import io
from pathlib import Path

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Group
from portal.models import Membership
from portal.models import User
from portal.services import csv_check
from portal.services import csv_import
from tests.builders import csv_bytes
from tests.builders import group_names_of
from tests.builders import make_group
from tests.builders import make_user

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "csv"


def user(email: str) -> User:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.email == email))


# 1. Encodings as spreadsheets write them, Read as …

def test_a_one_row_windows_1252_file_keeps_its_umlauts(account):
    data = (CORPUS / "windows-1252-comma-short.csv").read_bytes()
    preview = csv_check.preview_csv(account.admin, data)
    assert preview.encoding == "Windows-1252"
    assert preview.rows[0].name == "Käthe Kühn"
    csv_import.import_csv(account.admin, data, invite=False)
    assert user("person000.western@example.com").name == "Käthe Kühn"


def test_read_as_re_reads_the_file_in_the_encoding_chosen(account):
    data = "Full Name;Email\r\nŁucja Żak;lucja@example.com\r\n".encode("cp1250")
    preview = csv_check.preview_csv(account.admin, data, read_as="Windows-1252")
    assert (preview.encoding, preview.rows[0].name) == ("Windows-1252", "£ucja ¯ak")
    assert preview.format == "Windows-1252, values separated by semicolons"
    preview = csv_check.preview_csv(account.admin, data, read_as="Windows-1250")
    assert (preview.encoding, preview.rows[0].name) == ("Windows-1250", "Łucja Żak")
    csv_import.import_csv(account.admin, data, invite=False, read_as="Windows-1250")
    assert user("lucja@example.com").name == "Łucja Żak"


# 2. Trailing empty cells

def test_empty_cells_beyond_the_header_are_ignored_but_a_value_is_reported(account):
    data = ("Full Name;Email;Groups\r\n"
            "José Peña;jose@example.com;Vertrieb;\r\n"
            "Ana Lima;ana@example.com;Vertrieb;;  \r\n"
            "Bo Berg;bo@example.com;Vertrieb;extra\r\n").encode()
    preview = csv_check.preview_csv(account.admin, data)
    assert [(row.email, row.status) for row in preview.rows] == [
        ("jose@example.com", "new"), ("ana@example.com", "new"), ("bo@example.com", "invalid")]
    assert preview.rows[2].reason.startswith("has 4 values but the header has 3 columns")
    assert csv_import.import_csv(account.admin, data, invite=False).imported == 2


def test_a_header_ending_in_empty_cells_has_only_its_named_columns(account):
    data = b"Full Name,Email,,\r\nAna,ana@example.com,,\r\n"
    preview = csv_check.preview_csv(account.admin, data)
    assert preview.labels == ["Full Name", "Email"]
    assert preview.rows[0].status == "new"


# 3. An invalid optional value

def test_an_invalid_phone_imports_the_person_without_it_and_warns(account):
    data = csv_bytes([("Ana Lima", "ana@example.com", "+44 7657 335729"),
                      ("Bo Berg", "bo@example.com", "+44 20 7946 0958")],
                     header=("Full Name", "Email", "Phone"))
    preview = csv_check.preview_csv(account.admin, data)
    assert [row.status for row in preview.rows] == ["new", "new"]
    assert preview.rows[0].note == "phone left empty: +44 7657 335729 is not a valid number"
    # Every column read, with the raw value.
    assert preview.labels == ["Full Name", "Email", "Phone"]
    assert preview.cells_of(preview.rows[0]) == ["Ana Lima", "ana@example.com", "+44 7657 335729"]
    result = csv_import.import_csv(account.admin, data, invite=False)
    assert (result.imported, result.warnings) == (2, 1)
    assert user("ana@example.com").phone is None
    assert user("bo@example.com").phone == "+442079460958"


# 4. Workbooks

@pytest.mark.parametrize("kind", ["xlsx", "xls", "ods"])
def test_a_workbook_is_previewed_and_imported_like_a_csv_file(account, kind):
    data = (CORPUS / f"spreadsheet-long.{kind}").read_bytes()
    preview = csv_check.preview_csv(account.admin, data)
    assert preview.format.endswith("first sheet “mixed-long”")
    assert preview.labels == ["Full Name", "Email", "Groups", "Phone", "Start date"]
    first = preview.rows[0]
    assert (first.name, first.groups) == ("Käthe Kühn", ("Küche", "Café"))
    # A phone the spreadsheet stored as the number 4420794600958.0 is its digits again.
    numeric = next(row for row in preview.rows if preview.cells_of(row)[3] == "4420794600958")
    assert numeric.note == "phone left empty: 4420794600958 is not a valid number"
    assert preview.cells_of(first)[4] == "2024-01-01"
    result = csv_import.import_csv(account.admin, data, invite=False)
    assert result.imported == 120
    assert user("person001.mixed@example.com").phone == "+442079460958"


# 5. What was rejected

def test_the_rejected_rows_and_the_report_come_back_as_csv(account):
    data = csv_bytes([("Ana", "ana@example.com", "A"), ("Bo", "not an address", "B"),
                      ("=1+1", "", "C")])
    result = csv_import.import_csv(account.admin, data, invite=False)
    rejected = list(csv.reader(io.StringIO(result.rejected_csv.decode("utf-8-sig"))))
    assert rejected[0] == ["Full Name", "Email", "Groups", "Reason"]
    assert [row[:3] for row in rejected[1:]] == [["Bo", "not an address", "B"],
                                                 ["'=1+1", "", "C"]]
    assert rejected[2][3] == "Email is missing"
    report = list(csv.reader(io.StringIO(result.report_csv.decode("utf-8-sig"))))
    assert [row[:3] for row in report] == [["Line", "Email", "Outcome"],
                                           ["2", "ana@example.com", "imported"],
                                           ["3", "not an address", "rejected"],
                                           ["4", "", "rejected"]]
    # The rejected file, fixed, imports again as it is.
    fixed = result.rejected_csv.replace(b"not an address", b"bo@example.com")
    assert csv_check.preview_csv(account.admin, fixed).rows[0].status == "new"


# 6. Update existing users

def test_update_existing_users_previews_old_to_new_and_applies_it(account):
    ana = make_user(account, name="Ana Old", email="ana@example.com")
    make_user(account, name="Bo Berg", email="bo@example.com")
    sales = make_group(account, "Sales", members=[ana])
    data = csv_bytes([("Ana Lima", "ana@example.com", "Sales; Support", "+44 20 7946 0958"),
                      ("Bo Berg", "bo@example.com", "", ""),
                      ("Cy New", "cy@example.com", "Support", "")],
                     header=("Full Name", "Email", "Groups", "Phone"))
    plain = csv_check.preview_csv(account.admin, data)
    assert [row.status for row in plain.rows] == ["skip", "skip", "new"]
    preview = csv_check.preview_csv(account.admin, data, update=True)
    assert [row.status for row in preview.rows] == ["update", "skip", "new"]
    assert preview.rows[0].changes == [("Full Name", "Ana Old", "Ana Lima"),
                                       ("Phone", "", "+442079460958"),
                                       ("Groups", "", "+ Support")]
    assert preview.rows[1].note == "nothing to change"
    assert preview.importable == 2
    result = csv_import.import_csv(account.admin, data, invite=False, update=True)
    assert (result.imported, result.updated, result.skipped) == (1, 1, 1)
    ana_now = user("ana@example.com")
    assert (ana_now.name, ana_now.phone) == ("Ana Lima", "+442079460958")
    assert group_names_of("ana@example.com") == {"Sales", "Support"}
    assert group_names_of("cy@example.com") == {"Support"}
    assert sales.id in set(db.session.scalars(sa.select(Group.id)))
    # Importing again changes nothing more.
    again = csv_check.preview_csv(account.admin, data, update=True)
    assert [row.status for row in again.rows] == ["skip", "skip", "skip"]
