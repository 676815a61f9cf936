"""Rule state on disk: pending holds and confirmations, windows, household activity, away flags.

One SQLite table of JSON values keyed by section and key, in DATA_DIR/rules.db (mode 0600).
Written in one transaction per flush (each rule tick), so a crash loses at most one tick of it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_state (
    section TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (section, key)
) WITHOUT ROWID
"""


class RuleStateStore:
    """Keyed JSON values by section; `save` upserts and deletes (a None value) in one go."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            # created 0600 before SQLite opens it: rule state names households and devices
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def load(self) -> dict[str, dict[str, Any]]:
        """Every section's values."""
        out: dict[str, dict[str, Any]] = {}
        for section, key, value in self._db.execute("SELECT section, key, value FROM rule_state"):
            out.setdefault(section, {})[key] = orjson.loads(value)
        return out

    def save(self, changes: Mapping[tuple[str, str], Any]) -> None:
        """Write changed values; a value of None deletes its key."""
        if not changes:
            return
        upserts = [(s, k, orjson.dumps(v)) for (s, k), v in changes.items() if v is not None]
        deletes = [(s, k) for (s, k), v in changes.items() if v is None]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO rule_state (section, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (section, key) DO UPDATE SET value = excluded.value",
                upserts,
            )
            self._db.executemany("DELETE FROM rule_state WHERE section = ? AND key = ?", deletes)

    def close(self) -> None:
        self._db.close()
