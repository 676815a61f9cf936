"""The embedded time-series store: readings in SQLite under the data dir, for gateways without one.

Keyed by (device, timestamp in ms) like a time-series point, so a replayed reading overwrites
itself. Old readings are pruned after `retention_days`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict

from edge.database import open_database, sync_log, unsynced_commits
from edge.model import AlertEvent, FieldValue, Lane, Reading, ReadingFlag, epoch_ms
from edge.outbox import read_row

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    device_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    category TEXT NOT NULL,
    community TEXT NOT NULL,
    building TEXT NOT NULL,
    model TEXT NOT NULL,
    fields BLOB NOT NULL,
    flags TEXT NOT NULL DEFAULT '',  -- the reading's flags, comma-separated (edge.model.ReadingFlag)
    -- a point's key, as in the time-series store: the device's whole identity and its time
    PRIMARY KEY (device_id, at_ms, community, building, model)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS readings_by_time ON readings (at_ms);
"""
# version 1 -> 2: readings say what the gateway replaced (their time, the device their payload named)
_MIGRATIONS = ("ALTER TABLE readings ADD COLUMN flags TEXT NOT NULL DEFAULT '';",)


def _json(fields: dict[str, FieldValue]) -> bytes:
    # copied into a bytes of its own size: orjson's output sits in a buffer of about 1 KiB,
    # and a write holds hundreds of them (edge/outbox/rows.py: 4.9 -> 2 us a reading there)
    return bytes(memoryview(orjson.dumps(fields)))


class StoredReading(BaseModel):
    """A reading as the embedded store returns it."""

    model_config = ConfigDict(frozen=True)
    device_id: str
    at: datetime
    category: str
    community: str
    building: str
    model: str
    fields: dict[str, FieldValue]
    # what the gateway replaced: `time_zero`, `time_unit`, ..., `device_mismatch` (ReadingFlag)
    flags: list[ReadingFlag] = []


class ReadingQuery(BaseModel):
    """Which readings to read, newest first: each filter that is set narrows them."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    device_id: str | None = None
    communities: tuple[str, ...] | None = None  # None: every community
    category: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    limit: int = 100

    def params(self) -> dict[str, str | int | list[str]]:
        """The query as the gateway's `GET /v1/readings` takes it (how shard 0 asks a sibling
        shard under `run --shards N`; the route builds the same query back from them).

        No community at all (a caller who may see none) has no query string: an empty list is
        dropped from a URL, which would then ask for every community. Answer it without asking.
        """
        if self.communities == ():
            raise ValueError("a query of no community is answered empty, never sent")
        params: dict[str, str | int | list[str]] = {"limit": self.limit}
        if self.device_id is not None:
            params["device_id"] = self.device_id
        if self.communities is not None:
            params["community"] = list(self.communities)
        if self.category is not None:
            params["category"] = self.category
        if self.since is not None:
            params["since"] = self.since.isoformat()
        if self.until is not None:
            params["until"] = self.until.isoformat()
        return params


class ReadingStore:
    """Readings on local disk, as an outbox sink (lane `readings`)."""

    name = "local-readings"
    lanes: frozenset[Lane] = frozenset({"readings"})

    def __init__(self, path: Path, retention_days: int = 7) -> None:
        self.path = path
        self.retention = timedelta(days=retention_days)
        self._conn: sqlite3.Connection = open_database(path, _SCHEMA, migrations=_MIGRATIONS)
        self._writes = 0

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        await self._insert(
            [
                (
                    r.device.device_id,
                    epoch_ms(r.at),
                    r.device.category,
                    r.device.community,
                    r.device.building,
                    r.device.model,
                    _json(r.fields),
                    ",".join(r.flags),
                )
                for r in readings
            ]
        )

    async def write_stored_readings(self, rows: Sequence[bytes]) -> None:
        """Readings as the outbox stores them: their parts, without a `Reading` each."""
        parts = [read_row(body) for body in rows]
        await self._insert(
            [
                (d[0], at_ms, d[2], d[3], d[4], d[1], _json(fields), ",".join(flags))
                for d, fields, at_ms, flags in parts  # d: device id, model, category, ...
            ]
        )

    async def _insert(self, rows: list[tuple[str, int, str, str, str, str, bytes, str]]) -> None:
        """Written on the event loop without waiting for the disk, then made durable on a thread
        before the outbox's cursor moves past the rows (an fsync on the event loop held every
        message behind it, ten times a second)."""
        with unsynced_commits(self._conn), self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            self._writes += 1
            if self._writes % 100 == 1:
                cutoff = datetime.now(UTC) - self.retention
                self._conn.execute("DELETE FROM readings WHERE at_ms < ?", (epoch_ms(cutoff),))
        await asyncio.to_thread(sync_log, self.path)

    async def write_events(self, events: Sequence[AlertEvent]) -> None:
        return None

    async def close(self) -> None:
        self._conn.close()

    def query(self, query: ReadingQuery) -> list[StoredReading]:
        """Readings newest first."""
        where: list[str] = []
        params: list[object] = []
        if query.device_id is not None:
            where.append("device_id = ?")
            params.append(query.device_id)
        if query.communities is not None:
            where.append(f"community IN ({','.join('?' * len(query.communities))})")
            params.extend(query.communities)
        if query.category is not None:
            where.append("category = ?")
            params.append(query.category)
        if query.since is not None:
            where.append("at_ms >= ?")
            params.append(epoch_ms(query.since))
        if query.until is not None:
            where.append("at_ms < ?")
            params.append(epoch_ms(query.until))
        sql = (
            "SELECT device_id, at_ms, category, community, building, model, fields, flags "
            "FROM readings"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at_ms DESC LIMIT ?"
        params.append(query.limit)
        return [
            StoredReading(
                device_id=r[0],
                at=datetime.fromtimestamp(r[1] / 1000, UTC),
                category=r[2],
                community=r[3],
                building=r[4],
                model=r[5],
                fields=orjson.loads(r[6]),
                flags=[ReadingFlag(f) for f in r[7].split(",") if f],
            )
            for r in self._conn.execute(sql, params).fetchall()
        ]

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM readings").fetchone()[0])
