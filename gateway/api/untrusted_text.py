"""Text from outside (notes, names, reasons, device ids, payload strings): refused where it enters
the API when it carries control or bidirectional-override characters, escaped where it is
rendered (the live stream's JSON, the CSV export).

Bidi controls (U+202E RIGHT-TO-LEFT OVERRIDE and its family) make `exe.txt` read as `txt.exe` on a
duty officer's screen; control characters forge lines in logs and streams; a spreadsheet runs a
cell that starts like a formula (OWASP, CSV Injection).
"""

from __future__ import annotations

import re

# the Unicode bidirectional controls: LRM, RLM, ALM, the embeddings and overrides, the isolates
BIDI = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0 and C1 but tab, LF and CR
_BAD_IN_TEXT = re.compile(f"[{_CONTROL}{BIDI}]")
_BAD_IN_LINE = re.compile(f"[{_CONTROL}\t\n\r{BIDI}]")
# an identifier in a URL path: any character a device id may hold, but no control or bidi one
IDENTIFIER_PATTERN = f"^[^{_CONTROL}\t\n\r\u2028\u2029{BIDI}/]{{1,200}}$"


def free_text(value: str) -> str:
    """A note or reason: lines and tabs allowed; other control and bidi characters refused."""
    found = _BAD_IN_TEXT.search(value)
    if found:
        raise ValueError(f"control or bidi character U+{ord(found.group()):04X} not allowed")
    return value


def one_line(value: str) -> str:
    """A name or an id: no control character at all (no line breaks), no bidi character."""
    found = _BAD_IN_LINE.search(value)
    if found:
        raise ValueError(f"control or bidi character U+{ord(found.group()):04X} not allowed")
    return value


# JSON that is safe to put in an HTML page, a log line or an SSE `data:` line as it is: the
# characters below appear in JSON text only inside strings, where a \u escape means the same
_JSON_ESCAPES = {ord(c): f"\\u{ord(c):04x}" for c in f"<>&\u2028\u2029{BIDI}"}


def safe_json(text: str) -> str:
    """JSON text with <, >, &, the line separators and bidi controls as \\u escapes (same value)."""
    return text.translate(_JSON_ESCAPES)


# what makes a spreadsheet read a cell as a formula (OWASP CSV Injection): = + - @, tab, CR, LF,
# and the full-width forms a spreadsheet in a CJK locale also accepts; | starts a DDE call
_FORMULA_START = frozenset("=+-@\t\r\n|\uff1d\uff0b\uff0d\uff20\uff5c")
_CELL_STRIP = str.maketrans("", "", BIDI)


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text: bidi controls removed, and a leading quote
    before anything that would start a formula (also after leading spaces)."""
    text = "" if value is None else str(value).translate(_CELL_STRIP)
    first = text.lstrip(" \u3000")[:1]
    if first in _FORMULA_START or text[:1] in _FORMULA_START:
        return "'" + text
    return text
