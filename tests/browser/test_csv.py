"""An admin imports people through Browse CSV File, checks the preview, imports, exports."""
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.builders import PASSWORD
from tests.builders import csv_bytes

pytestmark = pytest.mark.browser


def test_admin_imports_a_csv_file_and_downloads_an_export(page, live_server, account, tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes(csv_bytes([("Ana Lima", "ana@example.com", "Drivers"),
                                ("Bo Berg", "bo@example.com", "Drivers; Office"),
                                ("No Mail", "", "")]))
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.wait_for_url("**/admin/participants/users/")
    page.get_by_text("Import/Export").click()
    page.get_by_role("link", name="Import Users via CSV").click()
    page.get_by_label("Browse CSV File").set_input_files(str(path))
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url("**/admin/participants/users/import/*")
    expect(page.get_by_text("3 rows: 2 new")).to_be_visible()
    expect(page.get_by_text("Groups that will be created: Drivers, Office.")).to_be_visible()
    expect(page.get_by_role("cell", name="Email is missing")).to_be_visible()
    page.get_by_role("button", name="Import all").click()
    expect(page.get_by_text("2 users imported, 0 skipped, 1 invalid row left out."))\
        .to_be_visible()
    page.get_by_role("link", name="Back to Users").click()
    expect(page.get_by_role("gridcell", name="bo@example.com")).to_be_visible()
    page.get_by_text("Import/Export").click()
    with page.expect_download() as info:
        page.get_by_role("link", name="Export All Users").click()
    download = info.value
    assert download.suggested_filename.startswith("users-account-")
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    assert '"Ana Lima","ana@example.com","","Drivers","invited"' in text


def test_admin_changes_read_as_imports_downloads_the_rejected_rows_and_undoes(page, live_server,
                                                                            account, tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes("Full Name;Email;Phone\r\nŁucja Šimić;lucja@example.com;+44 7657 335729\r\n"
                     "Bo Berg;bo at example;\r\n".encode("cp1250"))
    live_server.settle()
    sign_in(page, account.admin.user.email, PASSWORD)
    page.goto(f"{live_server.url}/admin/participants/users/import")
    page.get_by_label("Browse CSV File").set_input_files(str(path))
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url("**/admin/participants/users/import/*")
    expect(page.get_by_text("Read as Windows-1250, values separated by semicolons.")).to_be_visible()
    expect(page.get_by_role("cell", name="Łucja Šimić")).to_be_visible()
    page.get_by_label("Read as").select_option("Windows-1252")
    page.get_by_role("button", name="Preview again").click()
    expect(page.get_by_role("cell", name="£ucja Šimiæ")).to_be_visible()
    page.get_by_label("Read as").select_option("Windows-1250")
    page.get_by_role("button", name="Preview again").click()
    expect(page.get_by_role("cell", name="Łucja Šimić")).to_be_visible()
    expect(page.get_by_text("phone left empty: +44 7657 335729 is not a valid number"))\
        .to_be_visible()
    page.get_by_role("button", name="Import all 1 valid row").click()
    expect(page.get_by_text("1 user imported, 0 skipped, 1 row with a warning, "
                            "1 invalid row left out.")).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download rejected rows").click()
    text = Path(info.value.path()).read_bytes().decode("utf-8-sig")
    assert text.startswith("Full Name,Email,Phone,Reason\r\nBo Berg,bo at example,,")
    page.goto(f"{live_server.url}/admin/participants/users/imports")
    expect(page.get_by_role("cell", name="people.csv")).to_be_visible()
    page.get_by_role("link", name="Undo import").click()
    expect(page.get_by_text("Undo import will remove 1 person it added (restorable from "
                            "Deleted users).")).to_be_visible()
    # Issue 14: the one confirmation, a modal dialog.
    assert page.locator("dialog.confirm").evaluate("d => d.matches(':modal')")
    page.get_by_role("button", name="Undo import").click()
    expect(page.get_by_text("Import undone: 1 removed")).to_be_visible()
    expect(page.locator("p.hint", has_text="Undone ")).to_be_visible()
