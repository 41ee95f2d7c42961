"""Files written by a real spreadsheet (tests/fixtures/csv, LibreOffice Calc): each is read in
its own encoding and separator, every name as typed; workbooks read from their first sheet."""
import csv
import json
from pathlib import Path

import pytest

from portal.services import csv_encodings
from portal.services import csv_read

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "csv"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())


def source(name: str) -> list[list[str]]:
    with (CORPUS / "sources" / name).open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file))


@pytest.mark.parametrize("entry", [e for e in MANIFEST if e["encoding"]], ids=lambda e: e["file"])
def test_every_spreadsheet_csv_is_read_as_it_was_written(entry):
    data = (CORPUS / entry["file"]).read_bytes()
    table = csv_read.read_table(data, 1000)
    expected = source(entry["source"])
    assert table.delimiter == entry["delimiter"]
    assert table.labels == expected[0]
    assert [cells[0] for _, cells in table.records] == [row[0] for row in expected[1:]]
    assert [cells[2] for _, cells in table.records] == [row[2] for row in expected[1:]]
    if table.encoding != entry["encoding"]:
        # Only where the bytes read the same in both (a short ISO-8859-2 file without the
        # letters in which it differs from Windows-1250): the names above are right anyway.
        assert (entry["encoding"], table.encoding) == ("ISO-8859-2", "Windows-1250")
        assert data.decode("iso8859_2") == data.decode("cp1250")


@pytest.mark.parametrize("entry", [e for e in MANIFEST if not e["encoding"]],
                         ids=lambda e: e["file"])
def test_workbooks_are_read_from_their_first_sheet_with_numbers_as_typed(entry):
    data = (CORPUS / entry["file"]).read_bytes()
    table = csv_read.read_table(data, 1000)
    expected = source(entry["source"])
    assert table.delimiter is None
    assert table.encoding.endswith("first sheet “" + entry["source"][:-4] + "”")
    assert table.labels == expected[0]
    # Phones Calc stored as numbers (4420794600958.0) and dates stored as dates come back as
    # the text typed: every cell equals the source's.
    assert [cells[:5] for _, cells in table.records] == expected[1:]


def test_a_one_line_windows_1252_file_is_not_read_as_another_code_page():
    data = "Full Name,Email\r\nKäthe Kühn,kaethe@example.com\r\n".encode("cp1252")
    assert csv_encodings.decode(data) == ("Full Name,Email\r\nKäthe Kühn,kaethe@example.com\r\n",
                                          "Windows-1252")
    for name in ("José Peña", "François Ærø", "Renée Müller", "Zoë Brontë"):
        assert csv_encodings.guess(f"Full Name\n{name}\n".encode("cp1252")) == "Windows-1252"


@pytest.mark.parametrize("name,codec,label", [
    ("Łucja Šimić", "cp1250", "Windows-1250"),
    ("Tomáš Dvořák, Štefan Žižek", "iso8859_2", "ISO-8859-2"),
    ("Käthe Kühn", "mac_roman", "Mac Roman"),
])
def test_other_code_pages_win_only_on_strong_evidence(name, codec, label):
    assert csv_encodings.guess(f"Full Name\n{name}\n".encode(codec)) == label


def test_read_as_re_reads_the_bytes_and_refuses_an_impossible_encoding():
    data = "Full Name\nŁucja Żak\n".encode("cp1250")
    assert csv_encodings.decode(data, "Windows-1252")[0] == "Full Name\n£ucja ¯ak\n"
    assert csv_encodings.decode(data, "Windows-1250")[0] == "Full Name\nŁucja Żak\n"
    text = "Full Name\tEmail\nZoë\tz@example.com\n"
    assert csv_encodings.decode(text.encode("utf-16-le"))[0] == text  # no BOM
    with pytest.raises(Exception) as error:
        csv_encodings.decode(b"Full Name\nA\x81b\n", "Windows-1252")
    assert "cannot be read as Windows-1252" in str(error.value)
