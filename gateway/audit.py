"""The audit log: one append-only record per read of personal data, per alert action, per token
change and per refused cross-tenant attempt. Ids, never names or phone numbers.

DATA_DIR/audit.db (mode 0600); triggers refuse UPDATE and DELETE, and the API only reads it. The
one deletion is retention (`prune`): it first writes a record of itself to `audit_pruned`, and the
trigger lets through only rows at or below such a mark, oldest first.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from edge.database import open_or_set_aside

Result = Literal["ok", "refused", "not_found", "conflict"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
    role TEXT NOT NULL, community TEXT, object TEXT NOT NULL, action TEXT NOT NULL,
    result TEXT NOT NULL, request_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_community ON audit (community, id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS audit_pruned (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, before TEXT NOT NULL,
    upto_id INTEGER NOT NULL, deleted INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_pruned_no_update BEFORE UPDATE ON audit_pruned
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_pruned_no_delete BEFORE DELETE ON audit_pruned
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
# replaces the first release's unconditional trigger (same name) on open
_NO_DELETE = """
BEGIN IMMEDIATE;
DROP TRIGGER IF EXISTS audit_no_delete;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    WHEN OLD.id > (SELECT coalesce(max(upto_id), 0) FROM audit_pruned)
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
COMMIT;
"""


class AuditRecord(BaseModel):
    """Who did what to which object, when, and how it ended."""

    id: int
    at: datetime
    actor: str  # the token id
    role: str
    community: str | None
    object: str  # "alert:<id>", "device:<id>", "token:<id>", "alerts:export", ...
    action: str  # "read_personal_data", "acknowledge", "resolve", "assign", "silence", ...
    result: Result
    request_id: str


class AuditLog:
    """Appends records; reads them newest first."""

    def __init__(self, path: Path) -> None:
        # an unreadable file is moved aside, not fatal: alarms must not stop for the audit log,
        # and the moved file keeps the trail (`problem` degrades /healthz until it is dealt with)
        self._conn, self.problem = open_or_set_aside(
            path, _SCHEMA, "audit log", "its records are in the moved file: keep it with the trail"
        )
        self._lock = threading.Lock()
        trigger = self._conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'audit_no_delete'"
        ).fetchone()
        if trigger is None or "audit_pruned" not in trigger[0]:
            self._conn.executescript(_NO_DELETE)

    def close(self) -> None:
        self._conn.close()

    def record(
        self,
        *,
        actor: str,
        role: str,
        community: str | None,
        object: str,
        action: str,
        result: Result,
        request_id: str,
    ) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO audit (at, actor, role, community, object, action, result, "
                "request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    datetime.now(UTC).isoformat(),
                    actor,
                    role,
                    community,
                    object,
                    action,
                    result,
                    request_id,
                ),
            )

    def query(
        self,
        *,
        limit: int = 100,
        before_id: int | None = None,
        community: str | None = None,
        action: str | None = None,
        communities: Sequence[str] | None = None,
    ) -> list[AuditRecord]:
        """Newest first; `communities` is the caller's scope (None: every record, also those of
        no community, such as token changes)."""
        sql = "SELECT id, at, actor, role, community, object, action, result, request_id FROM audit"
        where: list[str] = []
        params: list[object] = []
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        if community is not None:
            where.append("community = ?")
            params.append(community)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        if communities is not None:
            where.append(
                f"community IN ({','.join('?' * len(communities))})" if communities else "0"
            )
            params.extend(communities)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [
            AuditRecord(
                id=r[0],
                at=datetime.fromisoformat(r[1]),
                actor=r[2],
                role=r[3],
                community=r[4],
                object=r[5],
                action=r[6],
                result=r[7],
                request_id=r[8],
            )
            for r in rows
        ]

    def prune(self, before: datetime) -> int:
        """Delete the records older than `before` (retention), leaving a mark of having done so."""
        cutoff = before.astimezone(UTC).isoformat()
        with self._lock, self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            upto, deleted = self._conn.execute(
                "SELECT max(id), count(*) FROM audit WHERE at < ?", (cutoff,)
            ).fetchone()
            if not deleted:
                return 0
            self._conn.execute(
                "INSERT INTO audit_pruned (at, before, upto_id, deleted) VALUES (?, ?, ?, ?)",
                (datetime.now(UTC).isoformat(), cutoff, upto, deleted),
            )
            return int(self._conn.execute("DELETE FROM audit WHERE id <= ?", (upto,)).rowcount)

    def count(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT count(*) FROM audit").fetchone()
        return int(row[0])


def open_audit(data_dir: Path) -> AuditLog:
    """The audit log of a data directory (created on first use)."""
    try:
        return AuditLog(data_dir / "audit.db")
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{data_dir / 'audit.db'}: {exc}") from exc
