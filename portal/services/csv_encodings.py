"""The character encoding of an uploaded CSV file, chosen the way spreadsheets write them.

A byte order mark decides (UTF-8, UTF-16); then UTF-16 without one (every other byte NUL);
then strict UTF-8, which a file in an 8-bit encoding with any letter beyond ASCII almost never
passes; then Windows-1252, what Excel and Calc write on Western systems. Windows-1250,
ISO-8859-2 and Mac Roman are chosen only on strong evidence: their reading of the bytes has
fewer impossible characters in names (a currency sign or a control character inside a word,
a capital letter inside a lower-case word) than Windows-1252's. A statistical guesser reads a
one-line file as anything (mac_iceland, cp775); these rules read it as its spreadsheet wrote it.
The admin can still choose another encoding (``READ_AS``); the preview says which one it used.
"""
import codecs
import re

from portal.services.errors import ServiceError

# What the preview offers under "Read as …": label -> Python codec.
READ_AS = {
    "UTF-8": "utf-8-sig",
    "Windows-1252": "cp1252",
    "Windows-1250": "cp1250",
    "ISO-8859-2": "iso8859_2",
    "Mac Roman": "mac_roman",
    "UTF-16": "utf-16",
}
# 8-bit candidates after UTF-8, most common first: a tie goes to the earlier one.
_EIGHT_BIT = ("Windows-1252", "Windows-1250", "ISO-8859-2", "Mac Roman")
# Enough of a file to judge its encoding by; cut at a line end.
SAMPLE = 256 * 1024
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_C1 = re.compile(r"[\x80-\x9f]")


def _file_error(message: str) -> ServiceError:
    return ServiceError(message, "file")


def _utf16_without_bom(data: bytes) -> str | None:
    """Return "utf-16-le"/"utf-16-be" when the NULs sit on one side of nearly every pair."""
    head = data[:4096]
    pairs = len(head) // 2
    if pairs < 4 or len(data) % 2:
        return None
    odd = head[1::2].count(0)
    even = head[0::2].count(0)
    if odd > 0.8 * pairs and even < 0.05 * pairs:
        return "utf-16-le"
    if even > 0.8 * pairs and odd < 0.05 * pairs:
        return "utf-16-be"
    return None


def implausible(text: str) -> int:
    """Count the characters beyond ASCII that no name, e-mail or group would hold.

    A C1 control character counts ten; a symbol beside a letter ("£ucja", "K‰the") and a
    capital inside a lower-case word ("KŠthe") count one each.
    """
    score = 10 * len(_C1.findall(text))
    last = len(text) - 1
    for match in _NON_ASCII.finditer(text):
        char = match.group()
        at = match.start()
        before = text[at - 1] if at else " "
        after = text[at + 1] if at < last else " "
        if not char.isalpha():
            if before.isalpha() or after.isalpha():
                score += 1
        elif char.isupper() and before.isalpha() and (before.islower() or after.islower()):
            score += 1
    return score


def _sample(data: bytes) -> bytes:
    if len(data) <= SAMPLE:
        return data
    end = data.rfind(b"\n", 0, SAMPLE)
    return data[:end if end > 0 else SAMPLE]


def guess(data: bytes) -> str:
    """Return the label (a key of READ_AS) of the encoding the file is most likely in."""
    if data.startswith(codecs.BOM_UTF8):
        return "UTF-8"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    if _utf16_without_bom(data):
        return "UTF-16"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "UTF-8"
    sample = _sample(data)
    best, best_score = None, None
    for label in _EIGHT_BIT:
        try:
            text = sample.decode(READ_AS[label])
        except UnicodeDecodeError:
            continue
        score = implausible(text)
        # Strictly fewer: another encoding must beat Windows-1252, not tie with it.
        if best_score is None or score < best_score:
            best, best_score = label, score
    return best or "Windows-1252"


def decode(data: bytes, read_as: str | None = None) -> tuple[str, str]:
    """Return (text, label) of the file, in the encoding asked for or the one guessed."""
    if read_as is not None and read_as not in READ_AS:
        raise _file_error(f"Unknown encoding {read_as!r}; choose one of {', '.join(READ_AS)}.")
    label = read_as or guess(data)
    codec = READ_AS[label]
    if label == "UTF-16" and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec = _utf16_without_bom(data) or "utf-16-le"
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as error:
        if read_as is None and label == "UTF-8":
            raise _file_error(
                "The file says it is UTF-8 but is not; choose another encoding under Read as, "
                "or save it again as CSV UTF-8.") from None
        byte = error.object[error.start]
        raise _file_error(
            f"The file cannot be read as {label}: byte {byte:#04x} at position "
            f"{error.start:,} is not a character there. Choose another encoding.") from None
    return text.removeprefix("\ufeff"), label
