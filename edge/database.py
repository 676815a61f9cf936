"""Opening the agent's SQLite files: WAL, fsync on commit, owner-only permissions, corruption handling."""

from __future__ import annotations

import logging
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

_log = logging.getLogger(__name__)


def open_database(path: Path, schema: str, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open (creating, mode 0600) a WAL-mode database and apply `schema` (idempotent DDL).

    A file that SQLite cannot read is raised as `sqlite3.DatabaseError`; callers decide whether to
    move it aside (`quarantine`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # personal data (SOS, falls) lives here: owner-only from the first byte (PIPL art. 28)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=check_same_thread, timeout=30.0
    )
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the broker is acked
        conn.execute("PRAGMA busy_timeout=30000")
        result = conn.execute("PRAGMA quick_check").fetchone()
        if result is None or result[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {result}")
        conn.executescript(schema)
    except BaseException:
        conn.close()
        raise
    return conn


def quarantine(path: Path) -> Path:
    """Move an unreadable database (and its WAL files) aside; returns where the main file went."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(Path(f"{target}{suffix}"))
    return target
