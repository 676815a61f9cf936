"""The durable outbox: readings, alert events and dead letters committed to disk before the ack.

SQLite in WAL mode with `synchronous=FULL`, one table per lane, a cursor per sink and lane. All
database work runs on one dedicated thread (`PriorityWorker`), so the event loop never waits on
an fsync and the connection is never shared between threads; urgent jobs (the alarm lane's
commits, fetches of alert events) go before queued ones, so an SOS never waits behind a queue of
telemetry commits and fetches of 2,000 readings. At the size cap the oldest routine readings are
shed (counted and logged); alert events are never shed.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import orjson

from edge.checkpointer import Checkpointer
from edge.database import open_database, quarantine, unsynced_commits
from edge.model import AlertEvent, DeadLetter, Lane, Reading, epoch_ms

# the row format moved to rows.py; named here as well, where callers and tests found it
from edge.outbox.rows import _ReadingDecoder as _ReadingDecoder
from edge.outbox.rows import encode_reading as encode_reading
from edge.outbox.worker import PriorityWorker

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

LANES: tuple[Lane, ...] = ("events", "readings")  # drain order: alert events before readings
MAX_DEAD_LETTERS = 100_000  # newest kept; older ones are counted as dropped
MAX_DEAD_LETTER_PAYLOAD = 4096  # bytes of a bad payload kept: enough to see what it was
OUTBOX_MAX_BYTES = 2 * 1024**3  # the disk cap; the gateway's `outbox_max_mb` defaults to it
DEAD_LETTER_SHARE = 0.1  # at the size cap, dead letters beyond this share of it go first
# Rows every sink has are deleted once this many have gathered, not at every cursor move: a
# delete of a few rows rewrote their pages each time (8 pages a move, 16 moves a second at
# 500 msgs/s); the delivered rows in between are passed over by every fetch (seq > cursor).
DELETE_DELIVERED_AT = 2_000
# Each commit's device sequence numbers go into `sequence_log` as one row, folded into
# `device_sequences` once this many have gathered: an upsert per device touched a page per
# device (12 of a commit's 15 pages at 500 msgs/s, for 20-odd devices of 2,000).
FOLD_SEQUENCES_AT = 200
FOLD_CHUNK = 500  # sequence numbers folded per job: ~1 ms (2,000 took 4.7 ms at p50, 22 at most)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, created_ms INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, created_ms INTEGER NOT NULL, body BLOB NOT NULL,
    routine INTEGER NOT NULL DEFAULT 1);  -- 0: the reading raised or cleared an alert
CREATE TABLE IF NOT EXISTS cursors (
    sink TEXT NOT NULL, lane TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (sink, lane));
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,
    cause TEXT NOT NULL, detail TEXT NOT NULL, received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL, lane TEXT NOT NULL,
    body BLOB NOT NULL, reason TEXT NOT NULL, at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS device_sequences (device TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sequence_log (
    id INTEGER PRIMARY KEY, body BLOB NOT NULL);  -- a commit's {device: seq}, folded in the above
CREATE TABLE IF NOT EXISTS receipts (
    lane TEXT NOT NULL, last_ordinal INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (lane, last_ordinal));  -- one row per batch: (packet id, digest, ordinal) x n
"""

Item = Reading | AlertEvent
# a stored reading as its row (`edge.outbox.rows`), for a sink that writes rows as they are
StoredReading = bytes
# what an ingest lane committed per packet id: (packet id, digest of topic and payload, ordinal)
Receipt = tuple[int, int, int]
# Receipts older than this many (by ordinal) can no longer match (the lane's RECEIPT_WINDOW,
# with room to spare): the batches holding only such receipts are deleted.
RECEIPTS_KEPT = 65_536


@dataclass(frozen=True, slots=True)
class LaneDepth:
    """How far one sink is behind on one lane."""

    sink: str
    lane: Lane
    depth: int
    oldest_age_s: float


@dataclass(frozen=True, slots=True)
class SetAside:
    """Entries one sink refused as invalid (a 4xx) within a time, and the latest of them."""

    count: int
    last_lane: Lane
    last_reason: str
    last_at: datetime


class Outbox:
    """Everything the agent has acknowledged and not yet delivered to every sink."""

    def __init__(
        self,
        path: Path,
        sinks: dict[str, frozenset[Lane]],
        *,
        now: Callable[[], datetime],
        max_bytes: int = OUTBOX_MAX_BYTES,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.recovered_from: Path | None = None  # where a corrupt file was moved on start
        self._sinks = sinks
        self._now = now
        self._executor = PriorityWorker("outbox")
        self._conn = self._open()
        # checkpoints on a thread of their own: an SOS's commit never pays for one
        self._checkpointer = Checkpointer(path, self._conn)
        self._decode_reading = _ReadingDecoder()
        self._waiters: list[tuple[frozenset[Lane], asyncio.Event]] = []
        self._on_events: list[Callable[[Sequence[AlertEvent]], None]] = []
        self.shed_readings = self._counter("shed_readings")
        self.dropped_dead_letters = self._counter("dropped_dead_letters")
        self.rejected_entries = self._counter("rejected_entries")
        self._commits_since_size_check = 0
        self._receipt_floor: dict[str, int] = {}  # per ingest lane: older receipts are void
        self._delivered_below: dict[str, int] = {}  # per lane: rows under this are deleted
        self._fold_queued = False
        self._closing = False
        self._sequence_rows = int(
            self._conn.execute("SELECT count(*) FROM sequence_log").fetchone()[0]
        )
        for sink, lanes in sinks.items():
            for lane in lanes:
                self._conn.execute(
                    "INSERT OR IGNORE INTO cursors (sink, lane, seq) VALUES (?, ?, 0)", (sink, lane)
                )

    def _open(self) -> sqlite3.Connection:
        try:
            return open_database(self.path, _SCHEMA, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            moved = quarantine(self.path)
            self.recovered_from = moved
            _log.error(
                "outbox %s is unreadable (%s): moved aside to %s and starting a fresh one; "
                "entries in the old file were not delivered",
                self.path,
                exc,
                moved,
            )
            return open_database(self.path, _SCHEMA, check_same_thread=False)

    def last_sequences(self) -> dict[str, int]:
        """Each device's last committed sequence number (read once, at start)."""
        rows = self._conn.execute("SELECT device, seq FROM device_sequences").fetchall()
        known = {str(device): int(seq) for device, seq in rows}
        for (body,) in self._conn.execute("SELECT body FROM sequence_log ORDER BY id"):
            known.update(orjson.loads(body))  # not yet folded: later than the table
        return known

    def receipts(self, lane: str) -> dict[int, tuple[int, int]]:
        """An ingest lane's committed receipts: packet id -> (digest, ordinal); read at start."""
        rows = self._conn.execute(
            "SELECT body FROM receipts WHERE lane = ? ORDER BY last_ordinal", (lane,)
        ).fetchall()
        known: dict[int, tuple[int, int]] = {}
        for (body,) in rows:
            flat = array("q")
            flat.frombytes(body)
            for n in range(0, len(flat), 3):  # a later batch's receipt for a packet id wins
                known[flat[n]] = (flat[n + 1], flat[n + 2])
        return known

    def forget_receipts(self, lane: str, below: int) -> None:
        """Drop an ingest lane's receipts, durably, before it returns; also any receipt with an
        ordinal under `below` that a commit still on its way brings.

        Blocking on purpose: the lane calls it when the broker says it kept no session, before
        subscribing, so no message of the new session arrives until the old receipts are gone.
        """

        def work() -> None:
            self._receipt_floor[lane] = below
            with self._conn:
                self._conn.execute("DELETE FROM receipts WHERE lane = ?", (lane,))

        self._executor.submit(work).result()

    def _counter(self, name: str) -> int:
        row = self._conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    async def _run(self, fn: Callable[[], _T], urgent: bool = False) -> _T:
        return await asyncio.wrap_future(self._executor.submit(fn, urgent))

    def waiter(self, lanes: frozenset[Lane] = frozenset({"events", "readings"})) -> asyncio.Event:
        """An event set whenever something is committed to one of `lanes` (one per forwarder):
        a commit of readings alone wakes no sink of alert events, and costs it no fetch."""
        event = asyncio.Event()
        self._waiters.append((lanes, event))
        return event

    def on_events(self, listener: Callable[[Sequence[AlertEvent]], None]) -> None:
        """Call `listener` with the alert events of every commit once they are on disk, on the
        event loop, before `commit()` returns (the express path: the local alert store and the
        live stream see an SOS without the forwarder's round trip; see `commit`)."""
        self._on_events.append(listener)

    async def close(self) -> None:
        self._closing = True  # no fold job queues another behind the close
        await asyncio.to_thread(self._checkpointer.close)
        await self._run(self._conn.close)
        self._executor.shutdown(wait=True)

    # -- writing -------------------------------------------------------------------------------

    async def commit(
        self,
        readings: Sequence[Reading] = (),
        events: Sequence[AlertEvent] = (),
        dead_letters: Sequence[DeadLetter] = (),
        alarm_readings: Sequence[Reading] = (),
        sequences: Mapping[str, int] | None = None,
        receipts: tuple[str, Sequence[Receipt]] | None = None,
        urgent: bool = False,
    ) -> None:
        """Write one batch in one transaction; returns once it is on disk (fsync'd).

        `urgent` (the alarm lane): before every queued job that is not urgent.

        `alarm_readings` raised or cleared an alert: at the size cap they go only after every
        routine reading. `sequences` is each device's last sequence number in this batch, kept
        so that a restarted agent still sees the gap a lost message leaves. `receipts` are the
        batch's packet ids (lane, rows), so that the broker's resend of one is recognised.
        """
        if not (readings or events or dead_letters or alarm_readings or (receipts and receipts[1])):
            return
        await self._run(
            lambda: self._commit(
                readings, events, dead_letters, alarm_readings, sequences, receipts
            ),
            urgent,
        )
        touched = {"events"} if events else set()
        if readings or alarm_readings:
            touched.add("readings")
        for lanes, waiter in self._waiters:
            if not lanes.isdisjoint(touched):
                waiter.set()
        if events:
            self._express(events)

    def _express(self, events: Sequence[AlertEvent]) -> None:
        """Hand committed events to the express listeners. Never raises: the events are on
        disk, and a commit that raised would be retried by its lane and stored twice; the
        forwarders deliver them from the outbox whatever a listener did."""
        for listener in self._on_events:
            try:
                listener(events)
            except Exception:
                _log.exception(
                    "express delivery of %d alert events failed; the forwarder delivers them",
                    len(events),
                )

    def _commit(
        self,
        readings: Sequence[Reading],
        events: Sequence[AlertEvent],
        dead_letters: Sequence[DeadLetter],
        alarm_readings: Sequence[Reading] = (),
        sequences: Mapping[str, int] | None = None,
        receipts: tuple[str, Sequence[Receipt]] | None = None,
    ) -> None:
        now_ms = epoch_ms(self._now())
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if events:
                conn.executemany(
                    "INSERT INTO events (created_ms, body) VALUES (?, ?)",
                    [(now_ms, e.model_dump_json().encode()) for e in events],
                )
            if readings:
                conn.executemany(
                    "INSERT INTO readings (created_ms, body) VALUES (?, ?)",
                    [(now_ms, encode_reading(r)) for r in readings],
                )
            if alarm_readings:
                conn.executemany(
                    "INSERT INTO readings (created_ms, body, routine) VALUES (?, ?, 0)",
                    [(now_ms, encode_reading(r)) for r in alarm_readings],
                )
            if sequences:
                conn.execute(
                    "INSERT INTO sequence_log (body) VALUES (?)", (orjson.dumps(sequences),)
                )
            if receipts and receipts[1]:
                self._keep_receipts(*receipts)
            if dead_letters:
                conn.executemany(
                    "INSERT INTO dead_letters (topic, payload, cause, detail, received_ms) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            d.topic,
                            d.payload[:MAX_DEAD_LETTER_PAYLOAD],
                            d.cause,
                            d.detail
                            if len(d.payload) <= MAX_DEAD_LETTER_PAYLOAD
                            else f"{d.detail} (first {MAX_DEAD_LETTER_PAYLOAD} of "
                            f"{len(d.payload)} bytes kept)",
                            epoch_ms(d.received_at),
                        )
                        for d in dead_letters
                    ],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._checkpointer.committed()
        if sequences:
            self._sequence_rows += 1
            if self._sequence_rows >= FOLD_SEQUENCES_AT and not self._fold_queued:
                self._fold_queued = True  # runs after the urgent jobs queued now
                self._executor.submit(self._fold_sequences)
        self._commits_since_size_check += 1
        if dead_letters or self._commits_since_size_check >= 20:
            self._commits_since_size_check = 0
            self._enforce_caps()

    def _fold_sequences(self) -> None:
        """Fold the oldest of `sequence_log` into `device_sequences`, about `FOLD_CHUNK`
        numbers at a time (on the database thread, as ordinary jobs: an SOS's commit waits for
        one chunk at most, a few ms; after a burst the log holds a thousand numbers a row).
        Unsynced: a fold a power cut takes leaves the log, which is read again at start."""
        conn = self._conn
        self._fold_queued = False
        if self._closing:
            return  # the rest is folded next time, or read at start as it is
        try:
            with unsynced_commits(conn), conn:
                conn.execute("BEGIN IMMEDIATE")
                log = conn.cursor()
                log.execute("SELECT id, body FROM sequence_log ORDER BY id")
                folded, rows, last = 0, 0, None
                # row by row, in order (a later row's number wins): one row in memory at a time
                while folded < FOLD_CHUNK and (row := log.fetchone()) is not None:
                    last, numbers = row[0], orjson.loads(row[1])
                    conn.executemany(
                        "INSERT INTO device_sequences (device, seq) VALUES (?, ?) "
                        "ON CONFLICT (device) DO UPDATE SET seq = excluded.seq",
                        numbers.items(),
                    )
                    folded += len(numbers)
                    rows += 1
                log.close()
                if last is not None:
                    conn.execute("DELETE FROM sequence_log WHERE id <= ?", (last,))
            self._sequence_rows = max(0, self._sequence_rows - rows)
        except sqlite3.Error:  # the log stays, and is read at start: tried again next time
            _log.exception("folding the device sequence log of %s failed", self.path)
            return
        self._checkpointer.committed()
        if rows and self._sequence_rows >= FOLD_SEQUENCES_AT // 2:  # more than a trickle left
            self._fold_queued = True
            self._executor.submit(self._fold_sequences)  # after the jobs queued meanwhile

    def _keep_receipts(self, lane: str, rows: Sequence[Receipt]) -> None:
        """One row per batch (a row per message cost 2.6 us each in the commit; this, 0.1 us)."""
        floor = self._receipt_floor.get(lane, 0)
        flat = array("q", [value for row in rows if row[2] >= floor for value in row])
        if not flat:
            return
        last = max(flat[2::3])
        self._conn.execute(
            "INSERT OR REPLACE INTO receipts (lane, last_ordinal, body) VALUES (?, ?, ?)",
            (lane, last, flat.tobytes()),
        )
        # an index range: nothing to do in most commits
        self._conn.execute(
            "DELETE FROM receipts WHERE lane = ? AND last_ordinal < ?",
            (lane, last - RECEIPTS_KEPT),
        )

    def _used_bytes(self) -> int:
        pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
        free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def _enforce_caps(self) -> None:
        conn = self._conn
        dead = conn.execute("SELECT max(id) - min(id) + 1 FROM dead_letters").fetchone()[0] or 0
        if dead > MAX_DEAD_LETTERS:
            excess = dead - MAX_DEAD_LETTERS
            with conn:
                conn.execute(
                    "DELETE FROM dead_letters WHERE id < (SELECT min(id) FROM dead_letters) + ?",
                    (excess,),
                )
                self._bump("dropped_dead_letters", excess)
            self.dropped_dead_letters += excess
        used = self._used_bytes()
        if used <= self.max_bytes:
            return
        used = self._trim_dead_letters()
        if used <= self.max_bytes:
            return
        rows = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        if rows == 0:
            _log.error(
                "outbox %s holds %d bytes of alert events, over its cap of %d: alert events are "
                "never shed; free disk space or fix the failing sink",
                self.path,
                used,
                self.max_bytes,
            )
            return
        per_row = max(used // max(rows, 1), 1)
        # shed 10% below the cap so this does not run on every commit
        shed = min(rows, (used - int(self.max_bytes * 0.9)) // per_row + 1)
        with conn:
            # routine readings first, oldest first; readings that raised an alert only after
            conn.execute(
                "DELETE FROM readings WHERE seq IN "
                "(SELECT seq FROM readings ORDER BY routine DESC, seq LIMIT ?)",
                (shed,),
            )
            self._bump("shed_readings", shed)
        self.shed_readings += shed
        _log.warning(
            "outbox %s reached its cap of %d bytes: shed the %d oldest readings (%d in total); "
            "alert events are kept",
            self.path,
            self.max_bytes,
            shed,
            self.shed_readings,
        )

    def _trim_dead_letters(self) -> int:
        """Over the cap: the oldest dead letters beyond their share go before any reading."""
        conn = self._conn
        sizes = conn.execute(
            "SELECT id, length(payload) + length(detail) + length(topic) FROM dead_letters "
            "ORDER BY id DESC"
        ).fetchall()
        budget = int(self.max_bytes * DEAD_LETTER_SHARE)
        kept = 0
        for index, (row_id, size) in enumerate(sizes):
            kept += size
            if kept > budget:
                dropped = len(sizes) - index
                with conn:
                    conn.execute("DELETE FROM dead_letters WHERE id <= ?", (row_id,))
                    self._bump("dropped_dead_letters", dropped)
                self.dropped_dead_letters += dropped
                _log.warning(
                    "outbox %s at its cap of %d bytes: dropped the %d oldest dead letters "
                    "before any reading",
                    self.path,
                    self.max_bytes,
                    dropped,
                )
                break
        return self._used_bytes()

    def _bump(self, name: str, by: int) -> None:
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    # -- reading and delivering ----------------------------------------------------------------

    async def fetch(self, sink: str, lane: Lane, limit: int) -> list[tuple[int, Item]]:
        """The next undelivered entries of `lane` for `sink`, oldest first (alert events urgent:
        an SOS on its way to the alert store does not wait behind a queue of readings)."""
        if lane == "readings":
            # Rows are read on the database thread and decoded off it: decoding 2,000 readings
            # is most of a fetch, and an alarm commit waits for the job running there.
            rows = await self._run(lambda: self._rows(sink, lane, limit))
            return await asyncio.to_thread(self._decode_readings, rows)
        return await self._run(lambda: self._fetch_events(sink, limit), urgent=True)

    async def fetch_stored(self, sink: str, limit: int) -> list[tuple[int, StoredReading]]:
        """The next undelivered readings for `sink` as stored (`edge.outbox.rows.read_row`
        reads their parts), oldest first: nothing decoded here or on the event loop."""
        return await self._run(lambda: self._rows(sink, "readings", limit))

    def _rows(self, sink: str, lane: Lane, limit: int) -> list[tuple[int, bytes]]:
        cursor = self._cursor(sink, lane)
        return self._conn.execute(
            f"SELECT seq, body FROM {lane} WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, limit)
        ).fetchall()

    def _decode_readings(self, rows: list[tuple[int, bytes]]) -> list[tuple[int, Item]]:
        return [(seq, self._decode_reading(body)) for seq, body in rows]

    def _fetch_events(self, sink: str, limit: int) -> list[tuple[int, Item]]:
        rows = self._rows(sink, "events", limit)
        return [(seq, AlertEvent.model_validate_json(body)) for seq, body in rows]

    def _cursor(self, sink: str, lane: Lane) -> int:
        row = self._conn.execute(
            "SELECT seq FROM cursors WHERE sink = ? AND lane = ?", (sink, lane)
        ).fetchone()
        return int(row[0]) if row else 0

    async def advance(self, sink: str, lane: Lane, seq: int) -> None:
        """Mark everything up to `seq` delivered to `sink`; drop rows every sink has."""
        await self._run(lambda: self._advance(sink, lane, seq))

    def _advance(self, sink: str, lane: Lane, seq: int) -> None:
        """Without waiting for the disk: the next commit's fsync takes this one with it (one
        log, written in order). A power cut before that moves the cursor back, and the sink is
        given again what it had, as after a crash between its delivery and this call (every
        sink takes a repeat: by id, by point, or through its delivery log). An fsync here cost
        the alarm lane's commits a wait behind it 15 times a second at 500 msgs/s."""
        with unsynced_commits(self._conn):
            self._move_cursor(sink, lane, seq)
        self._checkpointer.committed()

    def _move_cursor(self, sink: str, lane: Lane, seq: int) -> None:
        conn = self._conn
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE cursors SET seq = max(seq, ?) WHERE sink = ? AND lane = ?",
                (seq, sink, lane),
            )
            consumers = [s for s, lanes in self._sinks.items() if lane in lanes]
            placeholders = ",".join("?" * len(consumers))
            low = conn.execute(
                f"SELECT min(seq) FROM cursors WHERE lane = ? AND sink IN ({placeholders})",
                (lane, *consumers),
            ).fetchone()[0]
            if low and low - self._delivered_below.get(lane, 0) >= DELETE_DELIVERED_AT:
                conn.execute(f"DELETE FROM {lane} WHERE seq <= ?", (low,))
                self._delivered_below[lane] = low

    async def reject(
        self, sink: str, lane: Lane, seq: int, item: Item | StoredReading, reason: str
    ) -> None:
        """Set aside an entry the sink refused as invalid, and move past it."""

        def work() -> None:
            entry = self._decode_reading(item) if isinstance(item, bytes) else item
            body = entry.model_dump_json().encode()
            with self._conn:
                self._conn.execute(
                    "INSERT INTO rejected (sink, lane, body, reason, at_ms) VALUES (?,?,?,?,?)",
                    (sink, lane, body, reason[:1000], epoch_ms(self._now())),
                )
                self._bump("rejected_entries", 1)
            self.rejected_entries += 1

        await self._run(work)
        await self.advance(sink, lane, seq)

    async def set_aside(self, since: datetime) -> dict[str, SetAside]:
        """Per sink: entries it refused (set aside) after `since`, and the latest reason."""

        def work() -> dict[str, SetAside]:
            rows = self._conn.execute(
                "SELECT sink, count(*), max(id) FROM rejected WHERE at_ms > ? GROUP BY sink",
                (epoch_ms(since),),
            ).fetchall()
            out = {}
            for sink, count, last_id in rows:
                lane, reason, at_ms = self._conn.execute(
                    "SELECT lane, reason, at_ms FROM rejected WHERE id = ?", (last_id,)
                ).fetchone()
                at = datetime.fromtimestamp(at_ms / 1000, UTC)
                kept: Lane = "events" if lane == "events" else "readings"
                out[str(sink)] = SetAside(int(count), kept, str(reason), at)
            return out

        return await self._run(work)

    async def depths(self) -> list[LaneDepth]:
        """Per sink and lane: entries not yet delivered and the age of the oldest."""

        def work() -> list[LaneDepth]:
            now_ms = epoch_ms(self._now())
            out = []
            for sink, lanes in self._sinks.items():
                for lane in LANES:
                    if lane not in lanes:
                        continue
                    cursor = self._cursor(sink, lane)
                    depth, oldest = self._conn.execute(
                        f"SELECT count(*), min(created_ms) FROM {lane} WHERE seq > ?", (cursor,)
                    ).fetchone()
                    age = (now_ms - oldest) / 1000 if oldest is not None else 0.0
                    out.append(LaneDepth(sink, lane, int(depth), max(age, 0.0)))
            return out

        return await self._run(work)

    async def dead_letters(
        self, limit: int = 100, before_id: int | None = None
    ) -> list[DeadLetter]:
        """The newest dead letters, newest first."""

        def work() -> list[DeadLetter]:
            rows = self._conn.execute(
                "SELECT id, topic, payload, cause, detail, received_ms FROM dead_letters "
                "WHERE id < ? ORDER BY id DESC LIMIT ?",
                (before_id if before_id is not None else 2**62, limit),
            ).fetchall()
            return [
                DeadLetter(
                    id=r[0],
                    topic=r[1],
                    payload=bytes(r[2]),
                    cause=r[3],
                    detail=r[4],
                    received_at=datetime.fromtimestamp(r[5] / 1000, UTC),
                )
                for r in rows
            ]

        return await self._run(work)

    async def prune_dead_letters(self, before: datetime) -> int:
        """Delete dead letters received before `before` (retention); returns how many."""
        cutoff = epoch_ms(before)

        def work() -> int:
            with self._conn:
                return self._conn.execute(
                    "DELETE FROM dead_letters WHERE received_ms < ?", (cutoff,)
                ).rowcount

        return await self._run(work)

    async def dead_letter_count(self) -> int:
        return await self._run(
            lambda: int(self._conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])
        )
