"""Text a person typed: which characters never belong in a stored name or a search term.

"Control characters" are Unicode's Cc (C0, DEL, C1: NUL, TAB, CR, LF, ESC…), lone surrogates
(Cs: JSON can spell them, and neither database can store them) and the bidirectional
embedding, override and isolate controls, which can make a name display as something else
("Trojan Source", CVE-2021-42574). PostgreSQL refuses NUL in any text parameter, and a NUL ends
an SQLite FTS5 phrase early. The forms apply the same set (portal/forms.py); the services check
again for what arrives without a form (SCIM, CSV, the command line).
"""
import re

from portal.services.errors import ServiceError

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def refuse_control(value: str | None, message: str, field: str) -> None:
    """Raise ServiceError(message) on ``field`` when the value holds a control character."""
    if value and CONTROL.search(value):
        raise ServiceError(message, field)


def has_control(document) -> bool:
    """Tell whether any string in a parsed JSON document (keys too) holds a control character."""
    if isinstance(document, str):
        return bool(CONTROL.search(document))
    if isinstance(document, dict):
        return any(has_control(k) or has_control(v) for k, v in document.items())
    if isinstance(document, list):
        return any(has_control(item) for item in document)
    return False


def drop_control(value: str) -> str:
    """Return a search term without its control characters."""
    return CONTROL.sub("", value)
