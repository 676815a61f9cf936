"""The delivery log: every attempt of every notification channel at every alert event, on disk.

DATA_DIR/deliveries.db, its own file: it is written by the channels' forwarders, read by the API,
and a lost or corrupt log must never hold up an alert (it is moved aside and started afresh; a
write that fails is logged and counted, and delivery goes on). One row per (channel, event,
result): a retry that fails again adds to the row's `attempts` and moves its `last_at`, so an
hour-long outage is one row per event, not one per retry. The file keeps the newest `max_rows`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict

from edge.database import open_or_set_aside
from edge.model import AlertEvent, epoch_ms

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

MAX_ROWS = 200_000
_REASON_CHARS = 300
_TRIM_EVERY = 100  # writes between two trims to `max_rows`

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    sink TEXT NOT NULL, event_id TEXT NOT NULL, alert_id TEXT NOT NULL, kind TEXT NOT NULL,
    result TEXT NOT NULL, reason TEXT, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL, PRIMARY KEY (sink, event_id, result));
CREATE INDEX IF NOT EXISTS deliveries_by_alert ON deliveries (alert_id, first_ms);
"""


class DeliveryResult(StrEnum):
    """How one attempt of one channel at one event ended."""

    DELIVERED = "delivered"
    FAILED = "failed"  # retried later (unreachable, 5xx, rate limited, wrong credentials)
    REJECTED = "rejected"  # the channel refused it as invalid; set aside after the split
    SKIPPED = "skipped"  # not for this channel: its route does not match, or notify is off


class Delivery(BaseModel):
    """One channel's attempts at one alert event with one result."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sink: str
    event_id: str
    kind: str
    result: DeliveryResult
    reason: str | None = None
    first_at: AwareDatetime
    last_at: AwareDatetime
    attempts: int


class DeliveryLog:
    """Records attempts; lists them per alert."""

    def __init__(
        self, path: Path, *, now: Callable[[], datetime], max_rows: int = MAX_ROWS
    ) -> None:
        self.path = path
        self.max_rows = max_rows
        self.lost_records = 0  # attempts not recorded because the file failed
        self._now = now
        self._writes = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="delivery-log")
        # an unreadable file is moved aside (it keeps the attempts recorded so far) and /healthz
        # says so: delivery never waits for its log
        self._conn, self.problem = open_or_set_aside(
            path, _SCHEMA, "delivery log", "the attempts recorded before are in the moved file"
        )
        # a diagnostic record, not an alert: no fsync per write (the outbox has those)
        self._conn.execute("PRAGMA synchronous=NORMAL")

    async def record(
        self,
        sink: str,
        events: Sequence[AlertEvent],
        result: DeliveryResult,
        reason: str | None = None,
    ) -> None:
        """One attempt of `sink` at each of `events`."""
        if not events:
            return
        at = epoch_ms(self._now())
        rows = [
            (sink, e.id, e.alert.id, e.kind.value, result.value, _short(reason), at, at)
            for e in events
        ]
        try:
            await self._run(lambda: self._record(rows))
        except sqlite3.Error as exc:
            self.lost_records += len(rows)
            _log.error("delivery log %s: %d attempts not recorded: %s", self.path, len(rows), exc)

    async def record_one(
        self,
        sink: str,
        *,
        event_id: str,
        alert_id: str,
        kind: str,
        result: DeliveryResult,
        reason: str | None = None,
    ) -> None:
        """One attempt known by ids only: a phone channel's send to one person, or a provider's
        delivery receipt arriving by callback (the event itself is not at hand there)."""
        at = epoch_ms(self._now())
        row = (sink, event_id, alert_id, kind, result.value, _short(reason), at, at)
        try:
            await self._run(lambda: self._record([row]))
        except sqlite3.Error as exc:
            self.lost_records += 1
            _log.error("delivery log %s: an attempt not recorded: %s", self.path, exc)

    def _record(self, rows: list[tuple[str, str, str, str, str, str | None, int, int]]) -> None:
        with self._conn:
            self._conn.executemany(
                "INSERT INTO deliveries (sink, event_id, alert_id, kind, result, reason, "
                "first_ms, last_ms, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) "
                "ON CONFLICT (sink, event_id, result) DO UPDATE SET "
                "attempts = attempts + 1, last_ms = excluded.last_ms, reason = excluded.reason",
                rows,
            )
        self._writes += 1
        if self._writes % _TRIM_EVERY == 0:
            self._trim()

    def _trim(self) -> None:
        with self._conn:
            self._conn.execute(
                "DELETE FROM deliveries WHERE rowid <= (SELECT max(rowid) FROM deliveries) - ?",
                (self.max_rows,),
            )

    async def prune(self, before: datetime) -> int:
        """Delete the records whose last attempt was before `before` (retention); returns how many."""
        cutoff = epoch_ms(before)

        def work() -> int:
            with self._conn:
                return self._conn.execute(
                    "DELETE FROM deliveries WHERE last_ms < ?", (cutoff,)
                ).rowcount

        return await self._run(work)

    async def for_alert(self, alert_id: str) -> list[Delivery]:
        """Every recorded attempt at the alert's events, oldest first."""

        def work() -> list[tuple[str, str, str, str, str | None, int, int, int]]:
            return self._conn.execute(
                "SELECT sink, event_id, kind, result, reason, first_ms, last_ms, attempts "
                "FROM deliveries WHERE alert_id = ? ORDER BY first_ms, rowid",
                (alert_id,),
            ).fetchall()

        return [
            Delivery(
                sink=sink,
                event_id=event_id,
                kind=kind,
                result=DeliveryResult(result),
                reason=reason,
                first_at=_time(first),
                last_at=_time(last),
                attempts=attempts,
            )
            for sink, event_id, kind, result, reason, first, last, attempts in await self._run(work)
        ]

    async def close(self) -> None:
        await self._run(self._conn.close)
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)


def _short(reason: str | None) -> str | None:
    return None if reason is None else reason[:_REASON_CHARS]


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
