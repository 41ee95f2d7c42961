"""Import/Export on the Users tab: sidebar, upload, preview, background import, downloads."""
import csv
import io
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import ImportJob
from portal.models import User
from portal.models import UserImport
from portal.models import utcnow
from tests.builders import PASSWORD
from tests.builders import csv_bytes
from tests.builders import make_account
from tests.builders import make_user

BASE = "/admin/participants/users"
HX = {"HX-Request": "true"}


def upload(client, data: bytes, filename: str = "people.csv", **kwargs):
    return client.post(f"{BASE}/import", data={"file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data", **kwargs)


def uploaded(client, data: bytes) -> int:
    response = upload(client, data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def finished(client, job_id: int) -> str:
    """Poll the job like the page does until it is no longer running; return the fragment."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        html = client.get(f"{BASE}/import/{job_id}", headers=HX).get_data(as_text=True)
        if "Importing…" not in html:
            return html
        time.sleep(0.05)
    raise AssertionError("the import did not finish")


def emails() -> set[str]:
    db.session.commit()
    return set(db.session.scalars(sa.select(User.email)))


def test_import_users_via_csv_opens_in_the_sidebar_and_as_a_page(admin):
    fragment = admin.get(f"{BASE}/import", headers=HX)
    assert fragment.status_code == 200
    html = fragment.get_data(as_text=True)
    assert "Browse CSV File" in html and "<html" not in html and 'id="rows"' not in html
    page = admin.get(f"{BASE}/import").get_data(as_text=True)
    assert "Browse CSV File" in page and 'id="rows"' in page and "Import/Export" in page
    assert "Export All Users" in page and "Import Users via CSV" in page


def test_the_template_csv_has_the_columns_the_import_reads(admin):
    response = admin.get(f"{BASE}/import/template.csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.get_data(as_text=True).lstrip("\ufeff").startswith("Full Name,Email,Groups")


def test_a_bad_file_comes_back_with_its_message_and_no_job(admin):
    response = upload(admin, b"PK\x03\x04" + bytes(100), filename="people.xlsx")
    assert response.status_code == 422
    assert "ZIP archive, not a CSV file or a workbook" in response.get_data(as_text=True)
    response = admin.post(f"{BASE}/import", data={}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose a CSV file first." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportJob)) == 0


@pytest.mark.config(MAX_CONTENT_LENGTH=2000)
def test_a_file_over_the_limit_is_refused_before_parsing(admin):
    response = upload(admin, b"Full Name,Email\n" + b"a,b@example.com\n" * 200)
    assert response.status_code == 413
    assert "larger than" in response.get_data(as_text=True)


def test_uploading_needs_the_csrf_token(admin):
    response = upload(admin, csv_bytes([("Ana", "ana@example.com", "")]), csrf=False)
    assert response.status_code == 400


def test_the_preview_lists_rows_escaped_and_writes_nothing(admin, account):
    make_user(account, email="here@example.com")
    data = csv_bytes([("<script>alert(1)</script>", "ana@example.com", "{{7*7}}"),
                      ("Here", "here@example.com", ""), ("Bad", "bad@", "")])
    job_id = uploaded(admin, data)
    html = admin.get(f"{BASE}/import/{job_id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "{{7*7}}" in html
    assert "3 rows: 1 new, 1 already in this account" in html
    assert "Groups that will be created: {{7*7}}." in html
    assert 'name="lines" value="2"' in html and 'name="lines" value="3"' not in html
    assert "Import all" in html and "Import selected" in html
    assert "ana@example.com" not in emails()
    invalid = admin.get(f"{BASE}/import/{job_id}?status=invalid", headers=HX)
    text = invalid.get_data(as_text=True)
    assert "bad@" in text and "here@example.com" not in text and "<html" not in text


def test_import_all_runs_in_the_background_and_reports(admin, account):
    data = csv_bytes([(f"User {n}", f"u{n}@example.com", "Team") for n in range(30)])
    job_id = uploaded(admin, data)
    response = admin.post(f"{BASE}/import/{job_id}", data={"import_all": "Import all",
                                                            "invite": "y"})
    assert response.status_code == 302
    html = finished(admin, job_id)
    assert "30 users imported, 0 skipped." in html
    assert "Groups created: Team." in html
    assert {f"u{n}@example.com" for n in range(30)} <= emails()
    job = db.session.get(ImportJob, job_id)
    assert job.state == "done" and job.data is None
    again = admin.post(f"{BASE}/import/{job_id}", data={"import_all": "Import all"},
                       follow_redirects=True)
    assert "already being imported or was imported" in again.get_data(as_text=True)


def test_import_selected_imports_only_the_ticked_rows_without_mail(admin, account):
    data = csv_bytes([(f"User {n}", f"u{n}@example.com", "") for n in range(5)])
    job_id = uploaded(admin, data)
    admin.post(f"{BASE}/import/{job_id}",
               data={"import_selected": "Import selected", "lines": ["2", "4"]})
    assert "2 users imported" in finished(admin, job_id)
    assert {"u0@example.com", "u2@example.com"} <= emails()
    assert not {"u1@example.com", "u3@example.com", "u4@example.com"} & emails()
    assert db.session.get(ImportJob, job_id).result["invited"] == 0


def test_import_selected_with_nothing_ticked_says_so(admin):
    job_id = uploaded(admin, csv_bytes([("Ana", "ana@example.com", "")]))
    response = admin.post(f"{BASE}/import/{job_id}", data={"import_selected": "Import selected"},
                          follow_redirects=True)
    assert "Select at least one row" in response.get_data(as_text=True)
    assert db.session.get(ImportJob, job_id).state == "uploaded"


def test_another_admins_or_accounts_job_is_not_found(admin, account, app):
    job_id = uploaded(admin, csv_bytes([("Ana", "ana@example.com", "")]))
    second = make_user(account, role="admin", email="second@example.com")
    other = make_account()
    for email in (second.user.email, other.admin.user.email):
        client = app.test_client()
        client.login(email, PASSWORD)
        assert client.get(f"{BASE}/import/{job_id}").status_code == 404
        assert client.get(f"{BASE}/import/{job_id}", headers=HX).status_code == 404
        response = client.post(f"{BASE}/import/{job_id}", data={"import_all": "Import all"})
        assert response.status_code == 404
    assert db.session.get(ImportJob, job_id).state == "uploaded"
    assert "ana@example.com" not in emails()


def test_an_expired_upload_cannot_be_imported(admin):
    job_id = uploaded(admin, csv_bytes([("Ana", "ana@example.com", "")]))
    job = db.session.get(ImportJob, job_id)
    job.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert "has expired" in admin.get(f"{BASE}/import/{job_id}").get_data(as_text=True)
    response = admin.post(f"{BASE}/import/{job_id}", data={"import_all": "Import all"},
                          follow_redirects=True)
    assert "Upload the file again" in response.get_data(as_text=True)
    assert "ana@example.com" not in emails()


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_export_all_users_downloads_a_named_csv(admin, account):
    make_user(account, email="ana@example.com")
    response = admin.get(f"{BASE}/export")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    today = utcnow().date().isoformat()
    slug = account.name.lower().replace(" ", "-")
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="users-{slug}-{today}.csv"')
    assert response.headers["Cache-Control"] == "no-store"
    assert {row[1] for row in read_csv(response)[1:]} == {account.admin.user.email,
                                                         "ana@example.com"}


def test_export_to_csv_downloads_the_selection_only(admin, account):
    ana = make_user(account, email="ana@example.com")
    make_user(account, email="bo@example.com")
    foreign = make_user(make_account(), email="foreign@example.com")
    response = admin.post(f"{BASE}/bulk/export", data={"ids": [str(ana.id), str(foreign.id)]})
    assert response.status_code == 200
    assert [row[1] for row in read_csv(response)[1:]] == ["ana@example.com"]
    response = admin.post(f"{BASE}/bulk/export", data={"all_matching": "y", "q": "bo@"})
    assert [row[1] for row in read_csv(response)[1:]] == ["bo@example.com"]
    response = admin.post(f"{BASE}/bulk/export", data={}, follow_redirects=True)
    assert "Select at least one user first." in response.get_data(as_text=True)


def test_the_users_list_offers_export_to_csv(admin):
    html = admin.get(f"{BASE}/").get_data(as_text=True)
    assert f'formaction="{BASE}/bulk/export"' in html and "Export to CSV" in html


def test_the_upload_name_and_type_are_never_trusted(admin):
    data = csv_bytes([("Ana", "ana@example.com", "")])
    response = admin.post(
        f"{BASE}/import",
        data={"file": (io.BytesIO(data), "../../x.csv.html", "text/html")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    job = db.session.scalars(sa.select(ImportJob)).one()
    assert job.filename == "x.csv.html" and job.data == data
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    response = admin.post(f"{BASE}/import", data={"file": (io.BytesIO(png), "x.csv", "text/csv")},
                          content_type="multipart/form-data")
    assert response.status_code == 422 and "PNG file, not a CSV" in response.get_data(as_text=True)


def test_two_thousand_multipart_parts_are_refused(admin):
    fields = {f"f{n}": "x" for n in range(2000)}
    fields["file"] = (io.BytesIO(b"Full Name,Email\nA,a@example.com\n"), "x.csv")
    response = admin.post(f"{BASE}/import", data=fields, content_type="multipart/form-data")
    assert response.status_code == 413
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportJob)) == 0


def test_a_crashed_import_fails_writes_nothing_and_can_run_again(admin, monkeypatch):
    from portal.services import csv_import

    data = csv_bytes([(f"User {n}", f"u{n}@example.com", "Team") for n in range(20)])
    job_id = uploaded(admin, data)
    before = emails()

    def crash(*_args):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(csv_import, "_queue_mails", crash)
    admin.post(f"{BASE}/import/{job_id}", data={"import_all": "y", "invite": "y"})
    html = finished(admin, job_id)
    assert "The import failed and nothing was written." in html and "Import all" in html
    assert emails() == before
    assert db.session.get(ImportJob, job_id).state == "failed"
    monkeypatch.undo()
    admin.post(f"{BASE}/import/{job_id}", data={"import_all": "y"})
    assert "20 users imported" in finished(admin, job_id)


def test_a_long_preview_is_paged(admin):
    job_id = uploaded(admin, csv_bytes([(f"U {n}", f"u{n}@example.com", "") for n in range(150)]))
    first = admin.get(f"{BASE}/import/{job_id}").get_data(as_text=True)
    assert first.count('name="lines"') == 100 and "page 1 of 2" in first
    assert f'href="{BASE}/import/{job_id}?page=2"' in first
    second = admin.get(f"{BASE}/import/{job_id}?page=2", headers=HX).get_data(as_text=True)
    assert second.count('name="lines"') == 50 and "u149@example.com" in second


def test_the_preview_says_how_it_read_the_file_and_read_as_re_reads_it(admin):
    data = ("Full Name;Email;Phone\r\nŁucja Šimić;lucja@example.com;+44 7657 335729\r\n"
            "Bo;bo@example.com;\r\n").encode("iso8859_2")
    job_id = uploaded(admin, data)
    html = admin.get(f"{BASE}/import/{job_id}").get_data(as_text=True)
    assert "Read as ISO-8859-2, values separated by semicolons." in html
    assert "<th>Phone</th>" in html and "<td>+44 7657 335729</td>" in html
    assert "phone left empty: +44 7657 335729 is not a valid number" in html
    assert "Import all 2 valid rows" in html
    response = admin.post(f"{BASE}/import/{job_id}/options", data={"read_as": "Windows-1252"})
    assert response.status_code == 302
    html = admin.get(f"{BASE}/import/{job_id}").get_data(as_text=True)
    assert "Read as Windows-1252, values separated by semicolons." in html
    assert "<td>£ucja ©imiæ</td>" in html
    assert '<option selected value="Windows-1252">' in html
    # An encoding the bytes are not valid in is refused; the choice stays as it was.
    response = admin.post(f"{BASE}/import/{job_id}/options", data={"read_as": "UTF-8"},
                          follow_redirects=True)
    assert "cannot be read as UTF-8" in response.get_data(as_text=True)
    assert db.session.get(ImportJob, job_id).read_as == "Windows-1252"
    admin.post(f"{BASE}/import/{job_id}/options", data={"read_as": "ISO-8859-2"})
    admin.post(f"{BASE}/import/{job_id}", data={"import_all": "y"})
    finished(admin, job_id)
    db.session.expire_all()
    assert db.session.scalar(sa.select(User.name).where(User.email == "lucja@example.com")) \
        == "Łucja Šimić"


def test_after_the_import_the_rejected_rows_and_the_report_download(admin):
    data = csv_bytes([("Ana", "ana@example.com", ""), ("Bo", "bo at example", "")])
    job_id = uploaded(admin, data)
    assert admin.get(f"{BASE}/import/{job_id}/rejected.csv").status_code == 404
    admin.post(f"{BASE}/import/{job_id}", data={"import_all": "y"})
    html = finished(admin, job_id)
    assert "Download rejected rows" in html and "Download import report" in html
    response = admin.get(f"{BASE}/import/{job_id}/rejected.csv")
    assert response.headers["Content-Disposition"] == 'attachment; filename="people-rejected.csv"'
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["Full Name", "Email", "Groups", "Reason"]
    assert rows[1][:2] == ["Bo", "bo at example"] and "not valid" in rows[1][3]
    report = admin.get(f"{BASE}/import/{job_id}/report.csv").get_data(as_text=True)
    assert "ana@example.com,imported" in report


def test_update_existing_users_is_a_checkbox_of_the_preview(admin, account):
    make_user(account, name="Ana Old", email="ana@example.com")
    job_id = uploaded(admin, csv_bytes([("Ana Lima", "ana@example.com", "")]))
    assert "No row can be imported." in admin.get(f"{BASE}/import/{job_id}").get_data(
        as_text=True)
    admin.post(f"{BASE}/import/{job_id}/options", data={"read_as": "", "update": "y"})
    html = admin.get(f"{BASE}/import/{job_id}").get_data(as_text=True)
    assert "Full Name: Ana Old → Ana Lima" in html and "Import all 1 valid row<" in html
    admin.post(f"{BASE}/import/{job_id}", data={"import_all": "y"})
    assert "1 updated" in finished(admin, job_id)
    db.session.expire_all()
    assert db.session.scalar(sa.select(User.name).where(User.email == "ana@example.com")) \
        == "Ana Lima"


def test_the_import_history_lists_imports_and_undo_asks_first(admin, account):
    job_id = uploaded(admin, csv_bytes([("Ana", "ana@example.com", "Night")]))
    admin.post(f"{BASE}/import/{job_id}", data={"import_all": "y"})
    finished(admin, job_id)
    html = admin.get(f"{BASE}/imports").get_data(as_text=True)
    assert "people.csv" in html and "1 user imported" in html and "Undo import" in html
    import_id = db.session.scalar(sa.select(UserImport.id))
    report = admin.get(f"{BASE}/imports/{import_id}/report.csv").get_data(as_text=True)
    assert "ana@example.com,imported" in report
    confirm = admin.get(f"{BASE}/imports/{import_id}/undo").get_data(as_text=True)
    assert "Undo import will remove 1 person it added (restorable from Deleted users); " \
        "take 1 group membership back; delete the group it created: Night." in confirm
    db.session.expire_all()
    assert db.session.get(UserImport, import_id).undone_at is None  # asking changes nothing
    done = admin.post(f"{BASE}/imports/{import_id}/undo", follow_redirects=True)
    assert "Import undone: 1 removed" in done.get_data(as_text=True)
    other = make_account("Other")
    other_admin = admin.application.test_client()
    other_admin.login(other.admin.user.email)
    assert other_admin.get(f"{BASE}/imports/{import_id}/undo").status_code == 404
