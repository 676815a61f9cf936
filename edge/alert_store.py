"""The alert store on the gateway: alerts and their event history in SQLite, idempotent by event id."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.alert_stream import AlertStream
from edge.database import open_database
from edge.model import Alert, AlertEvent, AlertStatus, Reading, Severity, epoch_ms
from edge.sinks import Lane

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    community TEXT NOT NULL,
    building TEXT NOT NULL,
    device_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_opened ON alerts (opened_ms DESC, id DESC);
CREATE INDEX IF NOT EXISTS alerts_by_community ON alerts (community, opened_ms DESC, id DESC);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (status) WHERE status != 'resolved';
CREATE TABLE IF NOT EXISTS alert_events (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_events_by_alert ON alert_events (alert_id, at_ms);
"""


@dataclass(frozen=True, slots=True)
class AlertPage:
    """One page of alerts, newest first, and the cursor of the next page (None at the end)."""

    items: list[Alert]
    next_cursor: str | None


class InvalidCursor(ValueError):
    """A pagination cursor that this store did not issue."""


class AlertStore:
    """Alerts as they stand and every event that moved them."""

    name = "alert-store"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = open_database(path, _SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def apply(self, events: Sequence[AlertEvent]) -> list[AlertEvent]:
        """Record events (a replayed event id is ignored); returns the ones that were new."""
        new: list[AlertEvent] = []
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            for event in events:
                cursor = self._conn.execute(
                    "INSERT OR IGNORE INTO alert_events (id, alert_id, at_ms, body) VALUES (?,?,?,?)",
                    (event.id, event.alert.id, epoch_ms(event.at), event.model_dump_json()),
                )
                if cursor.rowcount != 1:
                    continue
                new.append(event)
                alert = event.alert
                self._conn.execute(
                    """INSERT INTO alerts (id, community, building, device_id, rule, severity,
                           status, opened_ms, updated_ms, body)
                       VALUES (?,?,?,?,?,?,?,?,?,?)
                       ON CONFLICT (id) DO UPDATE SET
                           severity = excluded.severity, status = excluded.status,
                           updated_ms = excluded.updated_ms, body = excluded.body
                       WHERE excluded.updated_ms >= alerts.updated_ms""",
                    (
                        alert.id,
                        alert.community,
                        alert.building,
                        alert.device_id,
                        alert.rule,
                        alert.severity.value,
                        alert.status.value,
                        epoch_ms(alert.opened_at),
                        epoch_ms(alert.updated_at),
                        alert.model_dump_json(),
                    ),
                )
        return new

    def get(self, alert_id: str) -> Alert | None:
        row = self._conn.execute("SELECT body FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return Alert.model_validate_json(row[0]) if row else None

    def history(self, alert_id: str) -> list[AlertEvent]:
        rows = self._conn.execute(
            "SELECT body FROM alert_events WHERE alert_id = ? ORDER BY at_ms, rowid", (alert_id,)
        ).fetchall()
        return [AlertEvent.model_validate_json(r[0]) for r in rows]

    def open_alerts(self) -> list[Alert]:
        rows = self._conn.execute("SELECT body FROM alerts WHERE status != 'resolved'").fetchall()
        return [Alert.model_validate_json(r[0]) for r in rows]

    def list(
        self,
        *,
        communities: Sequence[str] | None = None,
        status: AlertStatus | None = None,
        severity: Severity | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> AlertPage:
        """Alerts newest first (by opening time), filtered; keyset pagination stable under inserts."""
        where: list[str] = []
        params: list[object] = []
        if communities is not None:
            where.append(f"community IN ({','.join('?' * len(communities))})")
            params.extend(communities)
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        if severity is not None:
            where.append("severity = ?")
            params.append(severity.value)
        if cursor is not None:
            opened_ms, last_id = _decode_cursor(cursor)
            where.append("(opened_ms < ? OR (opened_ms = ? AND id < ?))")
            params.extend((opened_ms, opened_ms, last_id))
        sql = "SELECT body, opened_ms, id FROM alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY opened_ms DESC, id DESC LIMIT ?"
        params.append(limit + 1)
        rows = self._conn.execute(sql, params).fetchall()
        items = [Alert.model_validate_json(r[0]) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = _encode_cursor(last[1], last[2])
        return AlertPage(items, next_cursor)

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM alerts").fetchone()[0])


def _encode_cursor(opened_ms: int, alert_id: str) -> str:
    return base64.urlsafe_b64encode(f"{opened_ms}:{alert_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        opened, _, alert_id = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        if not alert_id:
            raise ValueError("no id")
        opened_ms = int(opened)
        if not 0 <= opened_ms < 2**62:
            raise ValueError("timestamp out of range")
        return opened_ms, alert_id
    except (ValueError, UnicodeDecodeError, sqlite3.Error) as exc:
        raise InvalidCursor("invalid cursor") from exc


class AlertStoreSink:
    """The local alert store as an outbox sink (lane `events`)."""

    name = "alert-store"
    lanes: frozenset[Lane] = frozenset({"events"})

    def __init__(self, store: AlertStore, stream: AlertStream) -> None:
        self.store = store
        self.stream = stream

    async def write_events(self, events: Sequence[AlertEvent]) -> None:
        self.stream.publish(self.store.apply(events))

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        return None

    async def close(self) -> None:
        return None
