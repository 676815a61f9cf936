"""Rule state on disk: pending holds and confirmations, windows, household activity, away flags.

One SQLite table of JSON values keyed by section and key, in DATA_DIR/rules.db (mode 0600).
Written in one transaction per flush (each rule tick), so a crash loses at most one tick of it.
Schema version 1 (`edge.database`): a file from before versions were kept is stamped 1, one
written by a newer release is refused with `StoreVersionError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from edge.database import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_state (
    section TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (section, key)
) WITHOUT ROWID;
"""


class RuleStateStore:
    """Keyed JSON values by section; `save` upserts and deletes (a None value) in one go."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # 0600 from the first byte: rule state names households and devices. An unreadable
        # file raises sqlite3.DatabaseError, as it did before versions were kept.
        self._db = open_database(path, _SCHEMA)
        # a tick's state, not an alarm: no fsync per flush (the outbox has those)
        self._db.execute("PRAGMA synchronous=NORMAL")

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
