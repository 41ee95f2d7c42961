"""Formula neutralisation of CSV cells (OWASP "CSV injection") and its exact inverse.

A spreadsheet runs a cell as a formula when it starts with = + - @ (and, in some, | or %),
also after leading spaces, and TAB, CR or LF at the start can smuggle one in; a separator or
quote followed by such a character is a formula again if the file is read with another
delimiter. Such cells get a leading ' (which spreadsheets show as text). defusedcsv covers
only part of this (no TAB or CR) and rewrites "|", so it could not be undone on import.
"""
import re

_LEAD = re.compile(r"[\t\r\n]|\s*[=+\-@|%]")
_INNER = re.compile(r"[,;\"\t]\s*[=+\-@|%]")
# One search over a row's cells joined by \x1f (and one in front): no match means no cell
# is dangerous. It starts with one of a few characters, which re skips to quickly, and tries
# what may follow only there (written as two branches, both were tried at each of those
# characters: the export's check took 40% longer).
ROW_CHECK = re.compile(r"[\x1f,;\"\t](?:\s*[=+\-@|%]|(?<=\x1f)[\t\r\n'])")


def dangerous(value: str) -> bool:
    """Tell whether a spreadsheet could read the cell, or part of it, as a formula."""
    if not value:
        return False
    if _LEAD.match(value) or _INNER.search(value):
        return True
    # A quote we would otherwise strip on import is itself protected, so the round trip is exact.
    return value[0] == "'" and dangerous(value[1:])


def neutralise(value: str) -> str:
    """Return the cell as it is safe to write into a CSV file."""
    return "'" + value if dangerous(value) else value


def restore(value: str) -> str:
    """Undo ``neutralise``: drop the quote it added, and only that."""
    return value[1:] if value[:1] == "'" and dangerous(value[1:]) else value
