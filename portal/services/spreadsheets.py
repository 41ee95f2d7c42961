"""Workbooks (.xlsx, .xls, .ods) read as the text rows a CSV file of them would hold.

python-calamine reads the first sheet's values. A spreadsheet keeps what looks like a number
as a number: a phone typed as +4420794600958 is the float 4420794600958.0, a date a date. Each
cell is turned back into the text a person typed: integral numbers without ".0", dates in ISO
form, TRUE/FALSE.
"""
import datetime
import io

from python_calamine import CalamineError
from python_calamine import CalamineWorkbook

from portal.services.errors import ServiceError

FORMATS = {"xlsx": "Excel workbook (.xlsx)", "xls": "Excel 97-2003 workbook (.xls)",
           "ods": "OpenDocument spreadsheet (.ods)"}


def cell_text(value) -> str:
    """Return a cell's value as the text a person typed into it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e17:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def first_sheet(data: bytes, kind: str) -> tuple[str, list[list[str]]]:
    """Return (sheet name, rows of text cells) of the workbook's first sheet."""
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not workbook.sheet_names:
            raise ServiceError("The workbook has no sheets.", "file")
        name = workbook.sheet_names[0]
        values = workbook.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except ServiceError:
        raise
    except (CalamineError, ValueError, OSError) as error:
        raise ServiceError(
            f"This {FORMATS[kind]} could not be read ({error.__class__.__name__}). Open it in "
            "your spreadsheet and save it again, or save it as CSV UTF-8.", "file") from None
    return name, [[cell_text(value) for value in row] for row in values]
