"""Short links for SMS: `/s/<code>` stands for one action link (`/a/<token>`) until it expires.

An action link's token carries its claim and signature and runs past 150 characters: too long
for an SMS template variable. The code is 12 random characters (71 bits) kept in
DATA_DIR/short-links.db with its token and expiry; opening it (GET) only redirects to the action
link's confirmation page, which itself changes nothing: the button there acts.
"""

from __future__ import annotations

import secrets
import string
import threading
from datetime import datetime
from pathlib import Path

from edge.database import open_or_set_aside

_SCHEMA = """
CREATE TABLE IF NOT EXISTS short_links (
    code TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at REAL NOT NULL);
"""
_ALPHABET = string.ascii_letters + string.digits
CODE_CHARS = 12


class ShortLinks:
    """Codes for action-link tokens; expired codes are pruned as new ones are made."""

    def __init__(self, data_dir: Path) -> None:
        path = data_dir / "short-links.db"
        self._conn, self.problem = open_or_set_aside(
            path, _SCHEMA, "short links", "the links in messages already sent stop working"
        )
        self._lock = threading.Lock()

    def shorten(self, token: str, expires_at: datetime, now: datetime) -> str:
        code = "".join(secrets.choice(_ALPHABET) for _ in range(CODE_CHARS))
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM short_links WHERE expires_at < ?", (now.timestamp(),))
            self._conn.execute(
                "INSERT INTO short_links (code, token, expires_at) VALUES (?, ?, ?)",
                (code, token, expires_at.timestamp()),
            )
        return code

    def token(self, code: str, now: datetime) -> str | None:
        """The action-link token behind `code`; None when unknown or expired."""
        if len(code) != CODE_CHARS or not all(c in _ALPHABET for c in code):
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT token, expires_at FROM short_links WHERE code = ?", (code,)
            ).fetchone()
        if row is None or row[1] < now.timestamp():
            return None
        return str(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
