"""Reading a CSV upload: its charset, its delimiter, its header; the table of its records.

Problems of the whole file (not text, a spreadsheet, an unclosed quote, no header, too many
rows) raise ServiceError on the ``file`` field; what is wrong with one row is csv_check's job.
"""
import codecs
import csv
import io
from dataclasses import dataclass

import charset_normalizer
import filetype

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
    delimiter: str
    header: dict[str, int]
    width: int
    ignored: list[str]
    records: list[tuple[int, list[str]]]


def _file_error(message: str) -> ServiceError:
    return ServiceError(message, "file")


def decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding name) of an upload, or refuse a file that is not CSV text.

    A BOM decides (UTF-8, UTF-16); then strict UTF-8; then charset-normalizer, which is what
    reads Excel's Windows-1252 files. Binary and spreadsheet files are told apart by bytes.
    """
    if not data.strip():
        raise _file_error("The file is empty.")
    kind = filetype.guess(data)
    if kind is not None and kind.extension in SPREADSHEETS | {"zip"}:
        raise _file_error(
            "This is an Excel workbook, not a CSV file. In Excel choose File › Save As › "
            "CSV UTF-8 (Comma delimited), then upload that file."
        )
    if kind is not None:
        raise _file_error(f"This is a {kind.extension.upper()} file, not a CSV file.")
    for bom, codec, label in (
        (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
        (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
        (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec), label
            except UnicodeDecodeError:
                raise _file_error(
                    f"The file says it is {label} but is not; save it again as CSV UTF-8."
                ) from None
    head = data[:8192]
    if sum(head.count(b) for b in _CONTROL_BYTES) > BINARY_SHARE * len(head):
        raise _file_error("This is not a text file. Upload a CSV file saved as text.")
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    # Ties are common (cp1250, cp1252 and cp1257 all read "Müller" alike, not "Ærø"); Excel
    # on Western Windows saves cp1252, so it wins a tie. The preview shows the names read.
    for match in matches:
        if ("cp1252" in match.could_be_from_charset and best is not None
                and (match.chaos, -match.coherence) <= (best.chaos, -best.coherence)):
            best = match
            break
    if best is None:
        raise _file_error(
            "The characters of this file could not be read. Save it again as CSV UTF-8."
        )
    if "cp1252" in best.could_be_from_charset:
        return data.decode("cp1252"), "Windows-1252"
    return str(best), best.encoding


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


def read_table(data: bytes, max_rows: int) -> Table:
    """Decode and parse the file strictly; raise ServiceError for problems of the whole file."""
    text, encoding = decode(data)
    delimiter, skip = _choose_delimiter(text)
    # newline="" keeps quoted line breaks inside values; CR, LF and CRLF all end a line.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[tuple[int, list[str]]] = []
    header_cells: list[str] | None = None
    header_line = 0
    last = 0  # the line the previous record ended on; a record starts on the next one
    try:
        for cells in reader:
            start = last + 1
            last = reader.line_num
            if (not cells or not cells[0] or cells[0].isspace()) and not "".join(cells).strip():
                continue  # a blank line
            if header_cells is None:
                if start > skip:
                    header_cells, header_line = cells, start
                continue
            if len(records) == max_rows:
                raise _file_error(
                    f"The file has more than {max_rows:,} rows, the most one import takes. "
                    "Split it into smaller files."
                )
            records.append((start, cells))
    except csv.Error as exc:
        raise _csv_error(exc, last + 1) from None
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
    return Table(encoding, delimiter, header, len(header_cells), ignored, records)

