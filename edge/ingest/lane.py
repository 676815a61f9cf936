"""An ingest lane: one MQTT session, its inbox, and the worker that commits and then acknowledges.

The agent runs two lanes: `alarm` (life-safety device models) and `telemetry` (everything else),
each with its own broker session and queue, so a telemetry flood cannot delay an SOS. A lane knows
the pipeline and the outbox only by the two small protocols below (the agent hands it both), so
ingest depends on no later stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from edge.ingest.receipts import Receipt, Receipts
from edge.ingest.session import Delivery, MqttSession
from edge.model import AlertEvent, DeadLetter, RawMessage, Reading

_log = logging.getLogger(__name__)
# messages handled between two turns of the event loop: small enough that the other lane (an
# SOS behind a telemetry flood) waits a few ms at most, large enough that the turns cost nothing
HANDLE_CHUNK = 64
# how long a lane that yields to another (telemetry to alarm) waits for it between chunks at
# most: an alarm-lane flood slows telemetry down but never stops it
YIELD_MAX_S = 0.1
# A gap in arrivals ends a linger only once a batch holds this many messages: the smallest
# common in-flight window, RabbitMQ's MQTT plugin's (`mqtt.prefetch = 10`; mosquitto's default
# `max_inflight_messages` is 20, the shipped gateway config has 1000). A broker whose window is
# full sends nothing until we acknowledge, so waiting on would only cost throughput; a smaller
# batch at a gap is a trickle (500 msgs/s arrive ~2 ms apart, often 5 ms and more), and ending
# it there cost a commit per 5-6 messages (85 commits a second). A broker with a window under
# this sends at most its window per linger (`alarm_linger_s`, `telemetry_linger_s`).
GAP_ENDS_LINGER_AT = 10
# ... and that gap: a broker with a full window and nothing to say for this long is waiting for
# our acks (a loaded 2-core gateway handed messages over within 1-2 ms here)
GAP_S = 0.005


class Handled(Protocol):
    """What one message produced."""

    @property
    def reading(self) -> Reading | None: ...
    @property
    def events(self) -> list[AlertEvent]: ...
    @property
    def dead_letter(self) -> DeadLetter | None: ...


class Handler(Protocol):
    """Turns one raw message into what it produced (the agent's pipeline)."""

    def handle(self, raw: RawMessage, retained: bool = False) -> Handled: ...

    def take_sequences(self) -> dict[str, int]: ...


class Committer(Protocol):
    """Makes one batch durable (the outbox); returns once it is on disk."""

    async def commit(
        self,
        readings: Sequence[Reading] = (),
        events: Sequence[AlertEvent] = (),
        dead_letters: Sequence[DeadLetter] = (),
        alarm_readings: Sequence[Reading] = (),
        sequences: Mapping[str, int] | None = None,
        receipts: tuple[str, Sequence[Receipt]] | None = None,
        urgent: bool = False,
    ) -> None: ...

    def receipts(self, lane: str) -> dict[int, tuple[int, int]]: ...

    def forget_receipts(self, lane: str, below: int) -> None: ...


@dataclass(slots=True)
class _Batch:
    """Messages handled and not yet committed, and what they produced."""

    deliveries: list[Delivery] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    alarm_readings: list[Reading] = field(default_factory=list)  # raised or cleared an alert
    events: list[AlertEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)
    receipts: list[Receipt] = field(default_factory=list)

    @property
    def urgent(self) -> bool:
        """An alert event waits for nothing (an SOS, a smoke alarm, one cleared)."""
        return bool(self.events)


def _expire(arrival: asyncio.Future[bool]) -> None:
    if not arrival.done():
        arrival.set_result(False)


class IngestLane:
    """Receives deliveries from one session and commits them to the outbox in batches."""

    def __init__(
        self,
        name: str,
        make_session: Callable[[Callable[[Delivery], None], Callable[[bool], None]], MqttSession],
        pipeline: Handler,
        outbox: Committer,
        *,
        batch_max: int,
        linger_s: float = 0.0,
        hold_acks_s: float = 0.0,
        retained_is_stale: bool = False,
        urgent: bool = False,
        yields_to: IngestLane | None = None,
    ) -> None:
        """`retained_is_stale`: a message the broker sends from its retained store (RETAIN set)
        is stale, published at some unknown earlier time; the pipeline is told (the alarm lane:
        a retained SOS must not be raised again by every new subscription). `urgent`: commits
        take the outbox's urgent path, past the other lane's (the alarm lane). `yields_to`: a
        lane whose messages go first (the telemetry lane yields to the alarm lane): between
        chunks this lane waits while that one has a message in hand that may be an alarm."""
        self.name = name
        self.pipeline = pipeline
        self.outbox = outbox
        self.batch_max = batch_max
        # Each batch costs a commit (an fsync) and a delivery per sink, whatever its size: at a
        # trickle every message was a batch of its own and the cost followed time, not work.
        # A batch of routine messages waits up to `linger_s` for company before its commit; a
        # message that raises or clears an alert ends the wait at once (an SOS is committed as
        # soon as it is handled), in either lane.
        self.linger_s = linger_s
        self.hold_acks_s = hold_acks_s  # test hook: a window between commit and ack to kill in
        self.retained_is_stale = retained_is_stale
        self.urgent = urgent
        self.yields_to = yields_to
        # set while this lane holds no message that may raise an alarm: from a message's arrival
        # until it is handled, and when it raised or cleared an alert until it is committed
        # (the outbox's express path has stored and streamed it by then)
        self.idle = asyncio.Event()
        self.idle.set()
        self.acked = 0
        self.batches = 0
        self._inbox: deque[Delivery] = deque()
        self._wake = asyncio.Event()
        self._arrival: asyncio.Future[bool] | None = None  # a linger waiting for the next message
        self.receipts = Receipts(name, outbox.receipts(name))
        self.session = make_session(self._receive, self.session_started)

    def session_started(self, present: bool) -> None:
        """The broker accepted us (called before we subscribe): without our session nothing it
        sends is a resend, and its packet ids start afresh, so the receipts go, durably."""
        if present or not len(self.receipts):
            return
        _log.info(
            "lane %s: the broker has no session of ours; forgetting %d receipts",
            self.name,
            len(self.receipts),
        )
        self.outbox.forget_receipts(self.name, self.receipts.forget())

    def _receive(self, delivery: Delivery) -> None:
        # No bound here on purpose: the session reads no more than receive-maximum
        # unacknowledged messages (even when the broker sends more), so this deque never holds
        # more than that.
        self._inbox.append(delivery)
        self.idle.clear()
        self._wake.set()
        arrival = self._arrival
        if arrival is not None and not arrival.done():
            arrival.set_result(True)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.session.run(), name=f"mqtt-{self.name}")
            tg.create_task(self._work(), name=f"ingest-{self.name}")

    async def _work(self) -> None:
        while True:
            if not self._inbox:
                self.idle.set()
            await self._wake.wait()
            self._wake.clear()
            while self._inbox:
                batch = _Batch()
                await self._fill(batch)
                if self.linger_s and not batch.urgent and len(batch.deliveries) < self.batch_max:
                    await self._linger(batch)
                if not batch.urgent and not self._inbox:
                    self.idle.set()  # routine messages only: nobody waits for their commit
                await self._finish(batch)

    async def _fill(self, batch: _Batch) -> None:
        """Handle what has arrived into `batch`, `HANDLE_CHUNK` messages at a time.

        Between chunks the event loop runs the other lane: a batch of a thousand telemetry
        messages handled in one go kept an SOS that arrived meanwhile waiting 50-100 ms.
        """
        while self._inbox and not batch.urgent and len(batch.deliveries) < self.batch_max:
            await self._give_way()
            self._handle_inbox(batch)
            if self._inbox and not batch.urgent and len(batch.deliveries) < self.batch_max:
                await asyncio.sleep(0)

    async def _give_way(self) -> None:
        """Wait (up to `YIELD_MAX_S`) while the lane this one yields to holds a message that
        may be an alarm: its handling, commit and express delivery then take turns of the event
        loop with nothing of this lane's in between (beside 90 % telemetry an SOS waited a
        chunk of telemetry at each of its five turns)."""
        first = self.yields_to
        if first is None or first.idle.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(YIELD_MAX_S):
                await first.idle.wait()

    def _handle_inbox(self, batch: _Batch) -> None:
        """Hand up to `HANDLE_CHUNK` arrived messages to the pipeline, into `batch`. A chunk
        with a message that raised or cleared an alert is committed at once, not after the rest
        of a batch (the alarms of one chunk, a fire's smoke detectors, share one commit).

        Synchronous from the first message to `take_sequences()`: the two lanes share one
        pipeline, and the sequence numbers taken here must be this lane's alone.
        """
        count = min(len(self._inbox), self.batch_max - len(batch.deliveries), HANDLE_CHUNK)
        if count <= 0:
            return
        handle = self.pipeline.handle
        resent = self.receipts.resent
        stale = self.retained_is_stale
        inbox = self._inbox
        for _ in range(count):
            delivery = inbox.popleft()
            batch.deliveries.append(delivery)
            if resent(delivery):
                # what its first delivery produced is committed (in this batch or an earlier
                # one, committed before this batch is acked): acknowledge it, add nothing
                continue
            out = handle(
                RawMessage(
                    topic=delivery.topic,
                    payload=delivery.payload,
                    received_at=delivery.received_at,
                ),
                stale and delivery.retain,
            )
            if out.dead_letter is not None:
                batch.dead.append(out.dead_letter)
            if out.events:
                batch.events.extend(out.events)
                if out.reading is not None:
                    batch.alarm_readings.append(out.reading)
            elif out.reading is not None:
                batch.readings.append(out.reading)
        # each device's last sequence number in this batch, committed with it
        batch.sequences.update(self.pipeline.take_sequences())
        batch.receipts.extend(self.receipts.take())

    async def _linger(self, batch: _Batch) -> None:
        """Let a batch of routine messages grow for up to `linger_s`, handling each as it comes.

        It ends at once when a message raises or clears an alert (an SOS is committed as soon as
        it is handled, with whatever routine messages came before it), when the batch is full,
        or at a gap in arrivals once the batch could fill a broker's in-flight window
        (`GAP_ENDS_LINGER_AT`): a broker whose window is full sends nothing until we
        acknowledge, so waiting on would only cost throughput.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger_s
        gap = min(GAP_S, self.linger_s / 4)
        while not batch.urgent and len(batch.deliveries) < self.batch_max:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            # below a window's worth, a gap is a trickle: the whole linger
            full = len(batch.deliveries) >= GAP_ENDS_LINGER_AT
            wait = min(gap, remaining) if full else remaining
            if not self._inbox:
                self.idle.set()  # routine messages only, so far: nobody waits for them
                if not await self._next_arrival(wait):
                    return  # nothing new within the gap (or the linger)
            self._wake.clear()
            await self._fill(batch)

    async def _next_arrival(self, within_s: float) -> bool:
        """Whether a message arrives within `within_s`. A future and a timer, not `wait_for`
        on the wake event (a task per wait): a linger waits once per message of a trickle."""
        loop = asyncio.get_running_loop()
        arrival: asyncio.Future[bool] = loop.create_future()
        self._arrival = arrival
        timer = loop.call_later(within_s, _expire, arrival)
        try:
            return await arrival
        finally:
            timer.cancel()
            self._arrival = None

    async def _finish(self, batch: _Batch) -> None:
        """Commit what `batch` produced, then acknowledge its messages."""
        await self._commit(
            batch.readings,
            batch.events,
            batch.dead,
            batch.alarm_readings,
            batch.sequences,
            batch.receipts,
        )
        self.batches += 1
        if self.hold_acks_s:
            _log.warning(
                "holding %d acks for %.1f s (test hook)", len(batch.deliveries), self.hold_acks_s
            )
            await asyncio.sleep(self.hold_acks_s)
        self.acked += self.session.ack(batch.deliveries)

    async def _commit(
        self,
        readings: list[Reading],
        events: list[AlertEvent],
        dead: list[DeadLetter],
        alarm_readings: list[Reading],
        sequences: dict[str, int],
        receipts: list[Receipt],
    ) -> None:
        delay = 0.1
        while True:
            try:
                await self.outbox.commit(
                    readings,
                    events,
                    dead,
                    alarm_readings,
                    sequences,
                    (self.name, receipts),
                    urgent=self.urgent,
                )
                return
            except Exception:  # disk full, I/O error: nothing is acknowledged until this succeeds
                _log.exception(
                    "outbox commit failed; retrying in %.1f s (nothing acknowledged)", delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
