"""Reading a CSV upload: its charset, its delimiter, its header; the table of its records.

Problems of the whole file (not text, a spreadsheet, an unclosed quote, no header, too many
rows) raise ServiceError on the ``file`` field; what is wrong with one row is csv_check's job.
"""
import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field

import filetype

from portal.services import csv_encodings
from portal.services import spreadsheets
from portal.services.csv_cells import restore
from portal.services.errors import ServiceError

# Header spellings accepted for each column, compared lower-cased with spaces collapsed.
COLUMNS = {
    "name": ("full name", "name", "fullname", "full_name"),
    "email": ("email", "e-mail", "email address", "e-mail address", "mail"),
    "groups": ("groups", "group"),
    "phone": ("phone", "phone number", "telephone", "mobile"),
}
HEADER_NAMES = {alias: column for column, aliases in COLUMNS.items() for alias in aliases}
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "vertical bars"}
SPREADSHEETS = {"xlsx", "xls", "ods"}
# Share of control bytes in the first 8 KB above which a file is binary, not text; a stray
# NUL in one cell stays a row-level error (T23), a PNG or a UTF-16 file without BOM does not.
BINARY_SHARE = 0.1
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13)) + b"\x7f"
_CSV_ERRORS = {
    "unexpected end of data": "a quoted value is never closed (a \" has no partner)",
    "field larger than field limit": (
        "a value is longer than {limit:,} characters (or a quote before it is never closed)"
    ),
    "expected after": "a quote appears in the middle of a quoted value (write it as \"\")",
    "new-line character seen in unquoted field": "a line break appears inside a value",
}


@dataclass
class Table:
    """The records of a file as read: each with its line number, and where each column is."""

    encoding: str
    delimiter: str | None  # None: a workbook, read cell by cell
    header: dict[str, int]
    width: int
    ignored: list[str]
    records: list[tuple[int, list[str]]]
    labels: list[str] = field(default_factory=list)  # the header's cells up to its last one


def _file_error(message: str) -> ServiceError:
    return ServiceError(message, "file")


def _spreadsheet_kind(data: bytes) -> str | None:
    kind = filetype.guess(data)
    if kind is None:
        return None
    if kind.extension in SPREADSHEETS:
        return kind.extension
    if kind.extension == "zip":
        raise _file_error(
            "This is a ZIP archive, not a CSV file or a workbook (.xlsx, .xls, .ods).")
    raise _file_error(f"This is a {kind.extension.upper()} file, not a CSV file.")


def decode(data: bytes, read_as: str | None = None) -> tuple[str, str]:
    """Return (text, encoding name) of an upload, or refuse a file that is not CSV text.

    The encoding is the one asked for (the preview's Read as …) or the one the file's bytes
    point to (csv_encodings: how spreadsheets write them). Binary files are told apart by bytes.
    """
    if read_as is None and not data.startswith(
            (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) \
            and csv_encodings.guess(data) != "UTF-16":
        head = data[:8192]
        if sum(head.count(b) for b in _CONTROL_BYTES) > BINARY_SHARE * len(head):
            raise _file_error("This is not a text file. Upload a CSV file saved as text.")
    return csv_encodings.decode(data, read_as)


def _header_key(cell: str) -> str:
    return " ".join(restore(cell).replace("\ufeff", "").split()).lower()


def _split_header(first_line: str, delimiter: str) -> list[str]:
    return next(csv.reader([first_line], delimiter=delimiter), [])


def _choose_delimiter(text: str) -> tuple[str, int]:
    """Return the delimiter and how many lines precede the header.

    Decided on the header line: the delimiter that splits it into the most known column
    names wins (csv.Sniffer guesses from the data, and names like "Müller, Ana" fool it).
    Excel's "sep=;" first line is honoured.
    """
    first, _, rest = text.partition("\n")
    first = first.rstrip("\r")
    if first.lower().startswith("sep=") and len(first) == 5 and first[4] in DELIMITERS:
        return first[4], 1
    best, best_score = ",", (-1, -1)
    for delimiter in DELIMITERS:
        cells = _split_header(first, delimiter)
        known = sum(1 for c in cells if _header_key(c) in HEADER_NAMES)
        if (known, len(cells)) > best_score:
            best, best_score = delimiter, (known, len(cells))
    return best, 0


def _csv_error(exc: csv.Error, line: int) -> ServiceError:
    text = str(exc)
    for needle, message in _CSV_ERRORS.items():
        if needle in text:
            text = message.format(limit=csv.field_size_limit())
            break
    return _file_error(f"Line {line}: {text}. Nothing was imported; fix the file and try again.")


def _csv_records(text: str) -> tuple[str, Iterator[tuple[int, list[str]]]]:
    """Return the delimiter and the (line, cells) of each record, the header's included."""
    delimiter, skip = _choose_delimiter(text)

    def records() -> Iterator[tuple[int, list[str]]]:
        # newline="" keeps quoted line breaks inside values; CR, LF and CRLF all end a line.
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        last = 0  # the line the previous record ended on; a record starts on the next one
        try:
            for cells in reader:
                start = last + 1
                last = reader.line_num
                if start > skip:
                    yield start, cells
        except csv.Error as exc:
            raise _csv_error(exc, last + 1) from None

    return delimiter, records()


def read_table(data: bytes, max_rows: int, read_as: str | None = None) -> Table:
    """Decode and parse the file strictly; raise ServiceError for problems of the whole file.

    A workbook (.xlsx, .xls, .ods) is read from its first sheet, a CSV file in the encoding
    asked for (``read_as``, a key of csv_encodings.READ_AS) or the one its bytes point to.
    """
    if not data.strip():
        raise _file_error("The file is empty.")
    kind = _spreadsheet_kind(data)
    if kind is not None:
        sheet, rows = spreadsheets.first_sheet(data, kind)
        encoding = f"{spreadsheets.FORMATS[kind]}, first sheet “{sheet}”"
        delimiter = None
        lines = enumerate(rows, start=1)
    else:
        text, encoding = decode(data, read_as)
        delimiter, lines = _csv_records(text)
    records: list[tuple[int, list[str]]] = []
    header_cells: list[str] | None = None
    header_line = 0
    for start, cells in lines:
        if (not cells or not cells[0] or cells[0].isspace()) and not "".join(cells).strip():
            continue  # a blank line
        if header_cells is None:
            header_cells, header_line = cells, start
            continue
        if len(records) == max_rows:
            raise _file_error(
                f"The file has more than {max_rows:,} rows, the most one import takes. "
                "Split it into smaller files."
            )
        records.append((start, cells))
    if header_cells is None:
        raise _file_error("The file has no rows.")
    header: dict[str, int] = {}
    ignored: list[str] = []
    for index, cell in enumerate(header_cells):
        column = HEADER_NAMES.get(_header_key(cell))
        if column is None:
            if cell.strip():
                ignored.append(cell.strip())
            continue
        if column in header:
            raise _file_error(
                f"Line {header_line}: the column {cell.strip()!r} appears twice "
                f"(columns {header[column] + 1} and {index + 1})."
            )
        header[column] = index
    missing = [label for column, label in (("name", "Full Name"), ("email", "Email"))
               if column not in header]
    if missing:
        raise _file_error(
            f"The first line must name the columns; {' and '.join(missing)} not found. "
            "Expected Full Name, Email and optionally Groups (any order, any case)."
        )
    if not records:
        raise _file_error("The file has a header line but no rows.")
    # Spreadsheets end lines with empty cells up to the widest row: they are not columns.
    width = len(header_cells)
    while width > 1 and not header_cells[width - 1].strip():
        width -= 1
    labels = [restore(cell).strip() for cell in header_cells[:width]]
    return Table(encoding, delimiter, header, width, ignored, records, labels)

