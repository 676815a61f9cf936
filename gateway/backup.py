"""Backup and restore of a data directory while the agent runs, through SQLite's online backup.

Each store is copied in one step of the backup API: a read transaction, so the copy is that
store as of one commit, and in WAL mode the agent keeps writing meanwhile. The stores are copied
upstream first: rule state, then the outbox, then what the outbox feeds (alert store, readings,
deliveries). So an alert event in the copied outbox is either still pending there (delivered
again after a restore, idempotent by event id) or already in the copied alert store; a message
acknowledged before the backup started is in the copy. `manifest.json` is written last: a
directory without it is an interrupted backup, and restore refuses it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.data_dir_lock import LOCK_FILE
from gateway.version import version

_log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1  # of the backup directory (manifest keys, file names)
# upstream first (see the module docstring); any other *.db follows in name order
STORE_ORDER = (
    "rules.db",
    "outbox.db",
    "alerts.db",
    "readings.db",
    "deliveries.db",
    "audit.db",
    "tokens.db",
    "central.db",
)
# small plain files that belong to the data directory (not the lock, not quarantined files)
PLAIN_FILES = ("api-token", "mqtt-session")


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class Copied:
    """One file of a backup or restore."""

    name: str
    bytes: int
    seconds: float


def stores(data_dir: Path) -> list[str]:
    """The SQLite stores of a data directory, in the order they are copied."""
    present = {p.name for p in data_dir.glob("*.db") if p.is_file()}
    ordered = [name for name in STORE_ORDER if name in present]
    return ordered + sorted(present - set(ordered))


def backup(data_dir: Path, target: Path) -> list[Copied]:
    """Copy every store and plain file of `data_dir` into `target` (new or empty)."""
    if not (data_dir / "outbox.db").is_file():
        raise BackupError(f"{data_dir}: no outbox.db here; is this the gateway's data dir?")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target}: not empty; back up into a new directory")
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    copied: list[Copied] = []
    for name in stores(data_dir):
        started = time.monotonic()
        _copy_store(data_dir / name, target / name)
        copied.append(Copied(name, (target / name).stat().st_size, time.monotonic() - started))
        _log.info("backed up %s (%d bytes)", name, copied[-1].bytes)
    for name in PLAIN_FILES:
        if (data_dir / name).is_file():
            _copy_plain(data_dir / name, target / name)
            copied.append(Copied(name, (target / name).stat().st_size, 0.0))
    manifest = {
        "format": FORMAT,
        "version": version(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_dir": str(data_dir.resolve()),
        "files": [{"name": c.name, "bytes": c.bytes} for c in copied],
    }
    _write_synced(target / MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
    _sync_dir(target)
    return copied


def restore(source: Path, data_dir: Path) -> tuple[list[Copied], Path | None]:
    """Put a backup back into `data_dir`; the caller holds the data dir's lock.

    Files it replaces are moved to `data_dir/before-restore-<time>/` (returned), never deleted.
    """
    files = _check_backup(source)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    aside = _move_aside(data_dir)
    copied: list[Copied] = []
    for name in files:
        started = time.monotonic()
        if name.endswith(".db"):
            _copy_store(source / name, data_dir / name, journal="wal")
        else:
            _copy_plain(source / name, data_dir / name)
        copied.append(Copied(name, (data_dir / name).stat().st_size, time.monotonic() - started))
    _sync_dir(data_dir)
    return copied, aside


def _check_backup(source: Path) -> list[str]:
    """The files of a complete, readable backup; raises BackupError otherwise."""
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(
            f"{source}: no {MANIFEST}: not a backup, or one that was interrupted"
        ) from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source / MANIFEST}: unreadable: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"{source}: backup format {manifest.get('format')!r}, this version reads {FORMAT}"
        )
    names = [str(f["name"]) for f in manifest["files"]]
    for name in names:
        path = source / name
        if not path.is_file() or "/" in name:
            raise BackupError(f"{source}: {name} is listed in the manifest but missing")
        if name.endswith(".db"):
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                result = conn.execute("PRAGMA integrity_check").fetchone()
            except sqlite3.DatabaseError as exc:
                raise BackupError(f"{path}: not a readable SQLite file: {exc}") from exc
            finally:
                conn.close()
            if result is None or result[0] != "ok":
                raise BackupError(f"{path}: integrity check failed: {result}")
    return names


def _move_aside(data_dir: Path) -> Path | None:
    """Move the current stores and plain files into `before-restore-<time>/`, if there are any."""
    current = [
        p
        for p in data_dir.iterdir()
        if p.is_file()
        and p.name != LOCK_FILE
        and (p.name.endswith((".db", ".db-wal", ".db-shm")) or p.name in PLAIN_FILES)
    ]
    if not current:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = data_dir / f"before-restore-{stamp}"
    aside.mkdir(mode=0o700)
    for path in current:
        path.rename(aside / path.name)
    _sync_dir(data_dir)
    return aside


def _copy_store(source: Path, target: Path, journal: str = "delete") -> None:
    """SQLite's online backup of one store, in one step (one read transaction: consistent)."""
    src = sqlite3.connect(source, timeout=30.0)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)  # personal data
        os.close(fd)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=-1)
            # a backup is one self-contained file; a restored store is WAL again, as the agent has it
            dst.execute(f"PRAGMA journal_mode={journal}")
            dst.commit()
        finally:
            dst.close()
    finally:
        src.close()
    with target.open("rb") as synced:
        os.fsync(synced.fileno())


def _copy_plain(source: Path, target: Path) -> None:
    _write_synced(target, source.read_bytes())


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def size_of(directory: Path) -> int:
    """Bytes in the files under `directory` (what a backup will roughly take)."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
