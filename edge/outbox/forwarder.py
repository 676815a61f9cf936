"""Forwarders: one per sink, draining the outbox in batches with retry, capped backoff and no limit.

Alert events go before readings. A batch leaves the outbox for a sink only after the sink accepted
it. A batch the sink rejects as invalid is split until the offending entry is found; that entry
alone is set aside (counted, logged) and delivery goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

from edge.clock import Clock
from edge.errors import SinkRejected, SinkUnavailable
from edge.model import AlertEvent, Lane, Reading
from edge.outbox.outbox import LANES, Item, Outbox, StoredReading
from edge.outbox.sink import Sink, StoredReadingSink

_log = logging.getLogger(__name__)


@dataclass
class ForwarderStatus:
    """What /metrics and /readyz say about one sink."""

    delivered: int = 0
    writes: int = 0  # batches the sink accepted
    errors: int = 0
    rejected: int = 0
    failing_since: float | None = None  # monotonic time of the first failure of this outage
    last_error: str | None = None


class Forwarder:
    """Delivers one sink's share of the outbox until cancelled."""

    def __init__(
        self,
        outbox: Outbox,
        sink: Sink,
        *,
        clock: Clock,
        batch_size: int = 2000,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        idle_poll_s: float = 1.0,
        linger_s: float = 0.0,
    ) -> None:
        self.outbox = outbox
        self.sink = sink
        self.status = ForwarderStatus()
        self._clock = clock
        self._batch_size = batch_size
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._idle_poll_s = idle_poll_s
        # A sink of readings (the time-series store) lets what it takes gather for `linger_s`
        # after a commit wakes it: one write and one cursor update per linger instead of one per
        # trickling commit (107 writes a second to the time-series store at 500 msgs/s without
        # it, 20 when its alert events still went at once: they are for dashboards there). A
        # sink of alert events alone (the alert store, the central API, webhooks, robots: where
        # people are told) never waits.
        self._linger_s = linger_s if "readings" in sink.lanes else 0.0
        self._wake = outbox.waiter(sink.lanes)
        # readings handed over as stored rows when the sink takes them so (the time-series
        # store, the embedded one): no `Reading` is built to read them back
        self._stored = sink if isinstance(sink, StoredReadingSink) else None

    async def run(self) -> None:
        delay = self._backoff_initial_s
        while True:
            self._wake.clear()
            try:
                full = await self._deliver_round()
            except SinkUnavailable as exc:
                self._note_failure(exc)
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, self._backoff_max_s)
                continue
            delay = self._backoff_initial_s
            if full:
                continue  # a backlog: on at once
            if not self._wake.is_set():
                # a timeout scope, not `wait_for` (which on Python 3.11 can swallow a
                # cancellation that comes as the wake does: a stop would then wait forever)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._idle_poll_s):
                        await self._wake.wait()
            if self._linger_s and self._wake.is_set():
                await asyncio.sleep(self._linger_s)

    async def _deliver_round(self) -> bool:
        """One batch of each lane, alert events first; True when a lane had a full batch."""
        full = False
        for lane in LANES:
            if lane in self.sink.lanes:
                full |= await self._deliver_lane(lane) >= self._batch_size
        return full

    async def drain(self) -> int:
        """Deliver until nothing is left (used on start and shutdown); raises SinkUnavailable."""
        total = 0
        while moved := await self.deliver_once():
            total += moved
        return total

    async def deliver_once(self) -> int:
        """Deliver one batch of the most urgent lane; returns how many entries moved on."""
        for lane in LANES:
            if lane in self.sink.lanes and (moved := await self._deliver_lane(lane)):
                return moved
        return 0

    async def _deliver_lane(self, lane: Lane) -> int:
        """Deliver the next batch of `lane`; returns how many entries moved on."""
        batch: Sequence[tuple[int, Item | StoredReading]]
        if lane == "readings" and self._stored is not None:
            batch = await self.outbox.fetch_stored(self.sink.name, self._batch_size)
        else:
            batch = await self.outbox.fetch(self.sink.name, lane, self._batch_size)
        if not batch:
            return 0
        await self._deliver(lane, batch)
        if self.status.failing_since is not None:
            outage = self._clock.monotonic() - self.status.failing_since
            _log.warning("sink %s is back after %.1f s", self.sink.name, outage)
            self.status.failing_since = None
            self.status.last_error = None
        self.status.delivered += len(batch)
        self.status.writes += 1
        return len(batch)

    async def _deliver(self, lane: Lane, batch: Sequence[tuple[int, Item | StoredReading]]) -> None:
        try:
            await self._write(lane, [item for _, item in batch])
        except SinkRejected as exc:
            if len(batch) == 1:
                seq, item = batch[0]
                self.status.rejected += 1
                _log.error(
                    "sink %s rejected an entry of lane %s (%s); set aside, delivery goes on",
                    self.sink.name,
                    lane,
                    exc,
                )
                await self.outbox.reject(self.sink.name, lane, seq, item, str(exc))
                return
            half = len(batch) // 2
            await self._deliver(lane, batch[:half])
            await self._deliver(lane, batch[half:])
            return
        await self.outbox.advance(self.sink.name, lane, batch[-1][0])

    async def _write(self, lane: Lane, items: list[Item | StoredReading]) -> None:
        if lane == "events":
            await self.sink.write_events([i for i in items if isinstance(i, AlertEvent)])
        elif self._stored is not None:
            await self._stored.write_stored_readings([i for i in items if isinstance(i, bytes)])
        else:
            await self.sink.write_readings([i for i in items if isinstance(i, Reading)])

    def _note_failure(self, exc: SinkUnavailable) -> None:
        self.status.errors += 1
        self.status.last_error = str(exc)
        if self.status.failing_since is None:
            self.status.failing_since = self._clock.monotonic()
            _log.warning(
                "sink %s unavailable (%s); entries stay in the outbox and are retried",
                self.sink.name,
                exc,
            )
