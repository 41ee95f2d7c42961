"""The CSV export's exact bytes, on either database: what today's file is (header, BOM, every
cell quoted, CRLF line ends, the formula guard, the phone's quote, column order, the account's
people only), for awkward values a spreadsheet, an old form or another tool could have left.

The expected file is written by Python's csv module and ``csv_cells.neutralise``, the rules
the export has always followed (issue 13: a faster export must not change a byte of it).
"""
import codecs
import csv
import io
from datetime import datetime

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Membership
from portal.services import csv_export
from portal.services import users
from portal.services.csv_cells import neutralise
from tests.builders import make_account
from tests.builders import make_group
from tests.builders import make_user

CREATED = datetime(2026, 1, 2, 3, 4, 5, 678900)
SEEN = datetime(2026, 11, 30, 23, 59, 59, 999999)

# (stored name, stored e-mail, stored phone) of people who have accepted, as no form writes
# them today but older data, SCIM or another tool might.
AWKWARD = [
    ('Ana "Quoted" Lima', "ana@example.com", "+442079460958"),
    ("Müller, Ana", "muller@example.com", None),
    ("Two\nlines\r\nand a CR\r", "lines@example.com", None),
    ("=1+2", "formula@example.com", "+15550100"),
    ("+1 Plus", "plus@example.com", None),
    ("-1 Minus", "minus@example.com", None),
    ("@SUM(A1)", "at@example.com", None),
    ("\tTab first", "tab@example.com", None),
    ("\rCR first", "cr@example.com", None),
    ("\nLF first", "lf@example.com", None),
    ("|pipe", "pipe@example.com", None),
    ("%0A", "percent@example.com", None),
    (" =spaced", "spaced@example.com", None),
    ("\u00a0=nbsp", "nbsp@example.com", None),
    ("\u3000@ideographic space", "ideo@example.com", None),
    ("a,=1+2", "comma@example.com", None),
    ('x";=1+2', "quote@example.com", None),
    ("a;\u2003+1", "emspace@example.com", None),
    ("'=already quoted", "quoted@example.com", None),
    ("'plain quote", "plainquote@example.com", None),
    ("O'Brien-Smith", "obrien@example.com", None),
    ("Zoë Ørsted 中文 😀", "zoe@example.com", "+819012345678"),
    ("Trailing tab\t", "=cmd@example.com", None),
    ("Plain", "-minus@example.com", None),
    ("Semi", "semi;@example.com", None),
    ("", "empty@example.com", None),
]
GROUP_NAMES = ["=Sum(A1)", 'Quote "q"', "a, b", "Tab\tinside", "Ünïcode ✓", "+Plus",
               "Line\nbreak"]


def expected(rows: list[tuple]) -> bytes:
    """Today's file of these rows (name, email, phone, groups, state, last seen, created)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(csv_export.COLUMNS)
    for name, email, phone, groups, state, seen, created in rows:
        writer.writerow([neutralise(name), neutralise(email), "'" + phone if phone else "",
                         neutralise("; ".join(groups)), state, seen, created])
    return codecs.BOM_UTF8 + buffer.getvalue().encode()


def exported(actor, selection=None, **options) -> bytes:
    chunks = list(csv_export.export_users(actor, selection, **options).chunks)
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    return b"".join(chunks)


@pytest.fixture
def awkward(account):
    """The account's people, awkward values and all, with fixed times; returns the rows the
    file must hold, in membership order, for the live people and for the deleted one."""
    made = [make_user(account, name=f"Person {n}", email=f"p{n}@example.com")
            for n in range(len(AWKWARD))]
    for membership, (name, email, phone) in zip(made, AWKWARD):
        membership.user.name, membership.user.email, membership.user.phone = name, email, phone
    # Groups made, and joined, in name order: PostgreSQL writes a person's groups in name
    # order, SQLite in the order they were joined (here the same).
    for n, name in enumerate(GROUP_NAMES):
        group = make_group(account, f"Awkward {n}", members=[made[n]])
        group.name = name  # stored as it is (the form would have cleaned the tab and break)
    many = make_user(account, name="Many Groups", email="many@example.com")
    for n in range(40):
        make_group(account, f"Team {n:02d}", members=[many])
    two = make_user(account, name="Two Groups", email="two@example.com")
    make_group(account, "Alpha, Inc.", members=[two])
    make_group(account, 'Beta "B"', members=[two])
    # A formula only after the "; " between two harmless names.
    boundary = make_user(account, name="Boundary", email="boundary@example.com")
    make_group(account, "Alpha", members=[boundary])
    make_group(account, "|Pipe group", members=[boundary])
    # Invited, not yet accepted: the name and phone typed in this account are shown.
    waiting = make_user(account, name="Typed Name", email="waiting@example.com", password=None)
    waiting.invited_name, waiting.invited_phone = "=Typed, Name", "+4930123456"
    waiting.user.name, waiting.user.phone = "Own Name", "+4930999999"
    expired = make_user(account, name="Expired", email="expired@example.com", password=None)
    expired.invite_state = "invite_expired"
    gone = make_user(account, name="@Gone", email="gone@example.com")
    gone.deleted_at = SEEN
    other_account = make_account()
    other = make_user(other_account, name="Other Account", email="other@example.com")
    make_group(other_account, "Other group", members=[other])
    db.session.flush()
    members = db.session.scalars(sa.select(Membership).where(
        Membership.account_id == account.id).order_by(Membership.id)).all()
    for number, membership in enumerate(members):
        membership.created_at = CREATED.replace(minute=number % 60)
        membership.sort_last_seen = SEEN if number % 2 else None
    db.session.commit()
    group_cells = {made[n].id: [name] for n, name in enumerate(GROUP_NAMES)}
    group_cells[many.id] = [f"Team {n:02d}" for n in range(40)]
    group_cells[two.id] = ["Alpha, Inc.", 'Beta "B"']
    group_cells[boundary.id] = ["Alpha", "|Pipe group"]
    rows = {}
    for membership in members:
        awaiting = membership.invited_name is not None
        rows[membership.id] = (
            membership.invited_name if awaiting else membership.user.name,
            membership.user.email,
            membership.invited_phone if awaiting else membership.user.phone,
            group_cells.get(membership.id, []),
            "deleted" if membership.deleted_at else membership.invite_state.replace("_", " "),
            membership.sort_last_seen.strftime("%Y-%m-%d %H:%M")
            if membership.sort_last_seen else "",
            membership.created_at.strftime("%Y-%m-%d %H:%M"))
    return {"rows": rows, "deleted": gone.id, "many": many.id}


def test_the_whole_account_exports_exactly_todays_bytes(account, awkward):
    rows = [row for member_id, row in awkward["rows"].items() if member_id != awkward["deleted"]]
    assert len(rows) == len(AWKWARD) + 6  # the admin, many, two, boundary, waiting, expired
    assert exported(account.admin) == expected(rows)


def test_with_the_deleted_people_the_bytes_are_todays(account, awkward):
    assert exported(account.admin, include_deleted=True) == expected(list(
        awkward["rows"].values()))


def test_a_selection_exports_exactly_todays_bytes_of_its_people(account, awkward):
    ids = list(awkward["rows"])
    chosen = [ids[4], ids[2], awkward["many"], ids[7], awkward["deleted"]]
    selection = users.Selection(ids=chosen)
    # In membership order, the deleted one left out (a selection is of live people).
    rows = [row for member_id, row in awkward["rows"].items()
            if member_id in chosen and member_id != awkward["deleted"]]
    assert exported(account.admin, selection) == expected(rows)


def test_pieces_of_a_few_lines_make_the_same_file_and_a_cut_off_download_ends_its_read(
        account, awkward, monkeypatch):
    monkeypatch.setattr(csv_export, "ROWS_PER_CHUNK", 3)
    monkeypatch.setattr(csv_export, "BATCH", 3)
    rows = [row for member_id, row in awkward["rows"].items() if member_id != awkward["deleted"]]
    pieces = list(csv_export.export_users(account.admin).chunks)
    assert len(pieces) > 10 and b"".join(pieces) == expected(rows)
    # The reader stops after two pieces (a closed browser tab): the read ends with it and
    # the session works on.
    chunks = csv_export.export_users(account.admin).chunks
    assert next(chunks).startswith(codecs.BOM_UTF8) and next(chunks).endswith(b"\r\n")
    chunks.close()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Membership)) == len(
        awkward["rows"]) + 2  # and the other account's admin and person


@pytest.mark.database("postgresql")  # SQLite writes them in the order they were joined
def test_postgresql_writes_a_persons_groups_in_name_order(account):
    person = make_user(account, name="Many", email="many@example.com")
    for n in reversed(range(30)):
        make_group(account, f"Team {n:02d}", members=[person])
    make_group(account, "|Zulu", members=[person])  # a formula only after a "; "
    db.session.commit()
    rows = list(csv.reader(io.StringIO(exported(account.admin).decode("utf-8-sig"),
                                       newline="")))
    cell = {row[1]: row[3] for row in rows[1:]}["many@example.com"]
    # Last in the byte order of the C collation and in the dictionary order of others.
    assert cell == "'" + "; ".join([f"Team {n:02d}" for n in range(30)] + ["|Zulu"]), cell
