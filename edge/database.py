"""Opening the agent's SQLite files: WAL, fsync on commit, owner-only permissions, corruption
handling, and a schema version per file (`PRAGMA user_version`) migrated forward under a lock.

A file from before versions were kept reads 0 and is stamped 1 (its schema is the first
release's, brought up to date by the idempotent DDL). A file stamped with a higher version than
the caller knows was written by a newer release: it is refused, untouched, with
`StoreVersionError` (not a `sqlite3.DatabaseError`, so nobody moves it aside as corrupt).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from edge.errors import StoreVersionError

_log = logging.getLogger(__name__)


def open_database(
    path: Path,
    schema: str,
    *,
    check_same_thread: bool = True,
    migrations: Sequence[str] = (),
) -> sqlite3.Connection:
    """Open (creating, mode 0600) a WAL-mode database, apply `schema` (idempotent DDL) and bring
    it to version `1 + len(migrations)`: `migrations[n]` takes a file from version n + 1 to n + 2.

    A file that SQLite cannot read is raised as `sqlite3.DatabaseError`; callers decide whether to
    move it aside (`quarantine`). A newer release's file raises `StoreVersionError`.
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
        _migrate(conn, path, schema, migrations)
    except BaseException:
        conn.close()
        raise
    return conn


def open_or_set_aside(
    path: Path,
    schema: str,
    what: str,
    consequence: str = "restore it from a backup",
    *,
    migrations: Sequence[str] = (),
) -> tuple[sqlite3.Connection, str | None]:
    """Open a store that alarms must not wait for: a file SQLite cannot read is moved aside
    (`quarantine`) and a new, empty one started. What happened is logged and returned (None when
    nothing did), for /healthz; nothing is rebuilt by itself (`community-edge restore` brings a
    backup back).

    Args:
        what: the store as people call it ("household register"), to begin the message.
        consequence: what starting empty means, or what to do about it, to end the message.

    The connection may be used from other threads (the stores hold their own lock).
    """
    try:
        conn = open_database(path, schema, check_same_thread=False, migrations=migrations)
        return conn, None
    except sqlite3.DatabaseError as exc:  # not StoreVersionError: a newer release's file stays
        moved = quarantine(path)
        problem = f"{what} {path} was unreadable ({exc}): moved to {moved}, started empty; "
        problem += consequence
        _log.error("%s", problem)
        conn = open_database(path, schema, check_same_thread=False, migrations=migrations)
        return conn, problem


@contextlib.contextmanager
def unsynced_commits(conn: sqlite3.Connection) -> Iterator[None]:
    """Commits within this block are written (a process crash keeps them: the OS has the log)
    without waiting for the disk; a power cut may take them until the next fsync of the log:
    a later commit's (one log, written in order) or `sync_log`'s."""
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        conn.execute("PRAGMA synchronous=FULL")


def sync_log(path: Path) -> None:
    """fsync the write-ahead log of the database at `path`: every commit in it, the unsynced
    ones too, is then on disk. No log file: closing the database moved it into the database
    file and synced that. Blocking, and touches no connection: run it on a thread
    (`asyncio.to_thread`), so that the event loop does not wait for the disk."""
    with contextlib.suppress(FileNotFoundError):
        descriptor = os.open(f"{path}-wal", os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def schema_version(conn: sqlite3.Connection) -> int:
    """The file's schema version (`PRAGMA user_version`; 0 before versions were kept)."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def _migrate(conn: sqlite3.Connection, path: Path, schema: str, migrations: Sequence[str]) -> None:
    """Schema and migrations in one write transaction: the lock that makes a second process
    opening the same file at the same time wait, then find the work done."""
    target = 1 + len(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(conn)
        if found > target:
            raise StoreVersionError(
                f"{path}: written by a newer community-edge (schema version {found}; this one "
                f"knows up to {target}). The file is left as it is: run the newer version, or "
                "restore a backup made by this one"
            )
        new = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        if not new:
            # 0: the first release's file (before versions were kept), which is version 1
            for version in range(max(found, 1), target):
                _log.warning("%s: migrating schema version %d -> %d", path, version, version + 1)
                for statement in _statements(migrations[version - 1]):
                    conn.execute(statement)
        # the current schema: all of it in a new file; in an old one, what no migration had to
        # change (tables and indexes added since, IF NOT EXISTS)
        for statement in _statements(schema):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {target}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> Iterator[str]:
    """The statements of a script, one at a time (executescript would commit our transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending
            pending = ""
    if pending.strip():
        yield pending


def quarantine(path: Path) -> Path:
    """Move an unreadable database (and its WAL files) aside; returns where the main file went."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(Path(f"{target}{suffix}"))
    return target
