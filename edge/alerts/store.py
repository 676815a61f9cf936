"""The alert store on the gateway: alerts and their event history in SQLite, idempotent by event id.

Also kept here: silences (made through the API), incidents (a view over alerts by incident id) and
the response figures. An alert row is replaced only by a higher revision of it, so events applied
out of order (an API action and the escalation task racing to the outbox) cannot undo a change.
Escalation timers live in the alert rows (`next_escalation_at`), written through the outbox with
the events that set them: after a crash the store holds exactly the timers of the events it holds.

Durability: the outbox's express path stores an SOS without waiting for the disk (the events are
already fsync'd in the outbox; waiting again held the live stream ~1 ms). The forwarder's copy of
the same events comes next and is made durable (`sync`, on a thread: the event loop never waits
for the disk) before the forwarder's cursor moves past them, so a power cut in between loses nothing:
the cursor still points before them and they are delivered again. A process crash loses nothing
either way (SQLite's WAL is written before `apply` returns).
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from edge.alerts.incidents import Incident, summarize
from edge.alerts.silences import Silence
from edge.alerts.stream import AlertStream
from edge.checkpointer import Checkpointer
from edge.database import open_database, sync_log, unsynced_commits
from edge.model import Alert, AlertEvent, AlertStatus, Lane, Reading, Severity, epoch_ms

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
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    over_ms INTEGER,  -- when it can no longer hold (end or expiry); NULL: recurs until expired
    body TEXT NOT NULL
);
"""

# columns added after the first release: added to an existing file on open (NULL in old rows)
_ALERT_COLUMNS = {
    "revision": "INTEGER NOT NULL DEFAULT 0",
    "category": "TEXT",
    "incident_id": "TEXT",
    "acknowledged_ms": "INTEGER",
    "resolved_ms": "INTEGER",
    "resolved_by": "TEXT",
    "escalations": "INTEGER NOT NULL DEFAULT 0",
    "next_escalation_ms": "INTEGER",
}
_INDEXES = """
CREATE INDEX IF NOT EXISTS alerts_by_incident ON alerts (incident_id) WHERE incident_id IS NOT NULL;
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
        have = {row[1] for row in self._conn.execute("PRAGMA table_info(alerts)")}
        for name, kind in _ALERT_COLUMNS.items():
            if name not in have:
                self._conn.execute(f"ALTER TABLE alerts ADD COLUMN {name} {kind}")
        self._conn.executescript(_INDEXES)
        # checkpoints on a thread of their own: the express path never pays for one
        self._checkpointer = Checkpointer(path, self._conn)
        self._unsynced = False  # committed by `apply(durable=False)`, not yet known on disk

    def close(self) -> None:
        self._checkpointer.close()
        self._conn.close()

    def apply(self, events: Sequence[AlertEvent], *, durable: bool = True) -> list[AlertEvent]:
        """Record events (a replayed event id is ignored); returns the ones that were new.

        Committed without waiting for the disk, then, `durable` (the default), the log synced:
        this commit and any earlier unsynced one. `durable=False` (the express path) leaves that
        to `sync`, which the forwarder's copy calls on a thread (module docstring)."""
        with unsynced_commits(self._conn):
            new = self._apply(events)
        self._unsynced = self._unsynced or bool(new)
        if durable:
            self.sync()
        return new

    def sync(self) -> None:
        """Make every commit so far durable. Touches no connection, so it runs on a thread
        (the forwarder's copy): cleared first, so that a commit made meanwhile is synced again."""
        if self._unsynced:
            self._unsynced = False
            sync_log(self.path)

    def _apply(self, events: Sequence[AlertEvent]) -> list[AlertEvent]:
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
                           status, opened_ms, updated_ms, body, revision, category, incident_id,
                           acknowledged_ms, resolved_ms, resolved_by, escalations,
                           next_escalation_ms)
                       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                       ON CONFLICT (id) DO UPDATE SET
                           severity = excluded.severity, status = excluded.status,
                           updated_ms = excluded.updated_ms, body = excluded.body,
                           revision = excluded.revision, incident_id = excluded.incident_id,
                           acknowledged_ms = excluded.acknowledged_ms,
                           resolved_ms = excluded.resolved_ms, resolved_by = excluded.resolved_by,
                           escalations = excluded.escalations,
                           next_escalation_ms = excluded.next_escalation_ms
                       WHERE excluded.revision > alerts.revision
                           OR (excluded.revision = alerts.revision
                               AND excluded.updated_ms >= alerts.updated_ms)""",
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
                        alert.revision,
                        alert.category,
                        alert.incident_id,
                        _ms(alert.acknowledged_at),
                        _ms(alert.resolved_at),
                        alert.resolved_by,
                        alert.escalations,
                        _ms(alert.next_escalation_at),
                    ),
                )
        if new:
            self._checkpointer.committed()
        return new

    def get(self, alert_id: str) -> Alert | None:
        row = self._conn.execute("SELECT body FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return Alert.model_validate_json(row[0]) if row else None

    def history(self, alert_id: str) -> list[AlertEvent]:
        rows = self._conn.execute(
            "SELECT body FROM alert_events WHERE alert_id = ? ORDER BY at_ms, rowid", (alert_id,)
        ).fetchall()
        return [AlertEvent.model_validate_json(r[0]) for r in rows]

    def prune_resolved(self, before: datetime, limit: int = 500) -> int:
        """Delete up to `limit` alerts resolved before `before`, with their events (retention).

        Open and acknowledged alerts are never deleted, however old. Called in small batches so
        the event loop that shares this connection stays responsive.
        """
        cutoff = epoch_ms(before)
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")  # an alert and its events go together
            ids = [
                row[0]
                for row in self._conn.execute(
                    "SELECT id FROM alerts WHERE status = 'resolved' "
                    "AND coalesce(resolved_ms, updated_ms) < ? LIMIT ?",
                    (cutoff, limit),
                )
            ]
            if ids:
                marks = ",".join("?" * len(ids))
                self._conn.execute(f"DELETE FROM alert_events WHERE alert_id IN ({marks})", ids)
                self._conn.execute(f"DELETE FROM alerts WHERE id IN ({marks})", ids)
        return len(ids)

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
            opened_ms, last_id = decode_cursor(cursor)
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
            next_cursor = encode_cursor(last[1], last[2])
        return AlertPage(items, next_cursor)

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM alerts").fetchone()[0])

    def communities(self) -> builtins.list[str]:
        """Every community with an alert in the store."""
        rows = self._conn.execute("SELECT DISTINCT community FROM alerts ORDER BY community")
        return [r[0] for r in rows]

    # -- incidents ---------------------------------------------------------------------------------

    def incident(self, incident_id: str) -> tuple[Incident, builtins.list[Alert]] | None:
        """One incident and its alerts (oldest first)."""
        rows = self._conn.execute(
            "SELECT body FROM alerts WHERE incident_id = ? ORDER BY opened_ms, id", (incident_id,)
        ).fetchall()
        if not rows:
            return None
        alerts = [Alert.model_validate_json(r[0]) for r in rows]
        return summarize(incident_id, alerts), alerts

    def incidents(
        self,
        *,
        communities: Sequence[str] | None = None,
        open_only: bool = False,
        min_alerts: int = 1,
        limit: int = 50,
    ) -> builtins.list[Incident]:
        """Incidents newest first (by their first alert's opening)."""
        where = ["incident_id IS NOT NULL"]
        params: builtins.list[object] = []
        if communities is not None:
            where.append(f"community IN ({','.join('?' * len(communities))})")
            params.extend(communities)
        having = ["count(*) >= ?"]
        params_having: builtins.list[object] = [min_alerts]
        if open_only:
            having.append("sum(status != 'resolved') > 0")
        ids = self._conn.execute(
            f"""SELECT incident_id FROM alerts WHERE {" AND ".join(where)}
                GROUP BY incident_id HAVING {" AND ".join(having)}
                ORDER BY min(opened_ms) DESC, incident_id DESC LIMIT ?""",
            [*params, *params_having, limit],
        ).fetchall()
        found = (self.incident(row[0]) for row in ids)
        return [pair[0] for pair in found if pair is not None]

    # -- silences ----------------------------------------------------------------------------------

    def put_silence(self, silence: Silence) -> None:
        over = min(filter(None, (silence.ends_at, silence.expired_at)), default=None)
        with self._conn:
            self._conn.execute(
                """INSERT INTO silences (id, created_ms, over_ms, body) VALUES (?,?,?,?)
                   ON CONFLICT (id) DO UPDATE SET over_ms = excluded.over_ms, body = excluded.body""",
                (silence.id, epoch_ms(silence.created_at), _ms(over), silence.model_dump_json()),
            )

    def silence(self, silence_id: str) -> Silence | None:
        row = self._conn.execute("SELECT body FROM silences WHERE id = ?", (silence_id,)).fetchone()
        return Silence.model_validate_json(row[0]) if row else None

    def silences(
        self, *, current_at: datetime | None = None, limit: int = 500
    ) -> builtins.list[Silence]:
        """Silences newest first; with `current_at`, only those not over by then."""
        sql = "SELECT body FROM silences"
        params: builtins.list[object] = []
        if current_at is not None:
            sql += " WHERE over_ms IS NULL OR over_ms > ?"
            params.append(epoch_ms(current_at))
        sql += " ORDER BY created_ms DESC, id DESC LIMIT ?"
        params.append(limit)
        return [Silence.model_validate_json(r[0]) for r in self._conn.execute(sql, params)]

    # -- response figures --------------------------------------------------------------------------

    def summary(
        self,
        community: str,
        since: datetime,
        until: datetime,
        others: Sequence[AlertStore] = (),
    ) -> Summary:
        """Response figures for the alerts of one community opened in [since, until); with
        `others` (the stores of the other shards), over the alerts of every store."""
        lo, hi = epoch_ms(since), epoch_ms(until)
        rows: builtins.list[tuple[int, int | None, int | None, str | None, int | None]] = []
        counts: dict[str, int] = {}
        for store in (self, *others):
            rows += store._conn.execute(
                """SELECT opened_ms, acknowledged_ms, resolved_ms, resolved_by, escalations
                   FROM alerts WHERE community = ? AND opened_ms >= ? AND opened_ms < ?""",
                (community, lo, hi),
            ).fetchall()
            for sev, n in store._conn.execute(
                """SELECT severity, count(*) FROM alerts
                   WHERE community = ? AND status != 'resolved' GROUP BY severity""",
                (community,),
            ):
                counts[sev] = counts.get(sev, 0) + n
        to_ack = sorted((r[1] - r[0]) / 1000 for r in rows if r[1] is not None)
        to_resolve = sorted(
            (r[2] - r[0]) / 1000 for r in rows if r[2] is not None and r[3] != "device"
        )
        open_rows = sorted(counts.items())
        return Summary(
            community=community,
            since=since,
            until=until,
            opened=len(rows),
            acknowledged=len(to_ack),
            resolved_by_person=len(to_resolve),
            cleared_by_device=sum(1 for r in rows if r[2] is not None and r[3] == "device"),
            ack_p50_s=_percentile(to_ack, 50),
            ack_p90_s=_percentile(to_ack, 90),
            resolve_p50_s=_percentile(to_resolve, 50),
            resolve_p90_s=_percentile(to_resolve, 90),
            open_by_severity={Severity(sev).value: n for sev, n in open_rows},
            escalations=sum(r[4] or 0 for r in rows),
            escalated_alerts=sum(1 for r in rows if r[4]),
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """Response figures of one community over a time range (see README, "Response figures")."""

    community: str
    since: datetime
    until: datetime
    opened: int
    acknowledged: int
    resolved_by_person: int
    cleared_by_device: int
    ack_p50_s: float | None
    ack_p90_s: float | None
    resolve_p50_s: float | None
    resolve_p90_s: float | None
    open_by_severity: dict[str, int] = field(default_factory=dict)
    escalations: int = 0
    escalated_alerts: int = 0


def _percentile(values: Sequence[float], p: int) -> float | None:
    """Nearest-rank percentile of sorted values: the smallest value with p% at or below it."""
    if not values:
        return None
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def _ms(at: datetime | None) -> int | None:
    return None if at is None else epoch_ms(at)


def encode_cursor(opened_ms: int, alert_id: str) -> str:
    """A page cursor: the last alert's opening time and id (keyset pagination)."""
    return base64.urlsafe_b64encode(f"{opened_ms}:{alert_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The (opened_ms, id) a cursor names; raises InvalidCursor for one not issued here."""
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

    def show(self, events: Sequence[AlertEvent]) -> None:
        """Store events at once, without waiting for the disk, and publish the new ones on the
        live stream (the express path, from the outbox's commit)."""
        self.stream.publish(self.store.apply(events, durable=False))

    async def write_events(self, events: Sequence[AlertEvent]) -> None:
        """The forwarder's copy: ignored by id where the express path stored it, and durable
        (with whatever the express path left unsynced) before the forwarder's cursor moves. The
        fsync runs on a thread: on the event loop it held every message behind it, ten times a
        second at ten SOS presses a second."""
        self.stream.publish(self.store.apply(events, durable=False))
        await asyncio.to_thread(self.store.sync)

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        return None

    async def close(self) -> None:
        return None
