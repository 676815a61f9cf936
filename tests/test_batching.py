"""Cost follows work: at a trickle, readings gather into batches; alarms and alert events never wait.

The lane's and the forwarder's linger, and the outbox waking only the sinks a commit concerns.
Pure: a real outbox on disk, MemorySinks, a stand-in session that records acks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

from edge.agent.pipeline import Output
from edge.clock import FakeClock
from edge.ingest import Delivery, IngestLane, MqttSession
from edge.ingest.lane import GAP_ENDS_LINGER_AT, HANDLE_CHUNK, YIELD_MAX_S
from edge.model import AlertEvent, DeviceRef, Lane, RawMessage, Reading
from edge.outbox import Forwarder, Outbox
from edge.sinks.memory import MemorySink
from tests.factories import opened_event
from tests.waiting import eventually

AT = datetime(2026, 11, 23, tzinfo=UTC)
DEVICE = DeviceRef(device_id="d1", model="m", category="door", community="c1", building="b1")


def _reading(i: int) -> Reading:
    return Reading(
        device=DEVICE,
        fields={"contact": True},
        at=AT + timedelta(milliseconds=i),
        received_at=AT,
        time_source="device",
        seq=i,
    )


class _Session:
    """Stands in for the MQTT session: the lane hands it batches to acknowledge."""

    def __init__(self, receive: Callable[[Delivery], None]) -> None:
        self.receive = receive
        self.acks: list[int] = []  # batch sizes, in order

    async def run(self) -> None:
        await asyncio.Event().wait()

    def ack(self, deliveries: Iterable[Delivery]) -> int:
        count = len(list(deliveries))
        self.acks.append(count)
        return count


class _Pipeline:
    """Every message a reading (no alert): what the lane commits is what arrived."""

    def __init__(self) -> None:
        self.count = 0

    def handle(self, raw: RawMessage, retained: bool = False) -> Output:
        self.count += 1
        return Output(reading=_reading(self.count))

    def take_sequences(self) -> dict[str, int]:
        return {}


def _delivery(n: int) -> Delivery:
    return Delivery(f"ce/c1/b1/door/d{n}", b"{}", n, 1, AT, 0)


async def _lane(tmp_path: Path, linger_s: float) -> tuple[IngestLane, _Session, Outbox]:
    outbox = Outbox(tmp_path / "outbox.db", {}, now=FakeClock(AT).now)
    sessions: list[_Session] = []

    def make(receive: Callable[[Delivery], None], started: Callable[[bool], None]) -> MqttSession:
        sessions.append(_Session(receive))
        return cast(MqttSession, sessions[-1])

    lane = IngestLane("telemetry", make, _Pipeline(), outbox, batch_max=100, linger_s=linger_s)
    return lane, sessions[0], outbox


async def _trickle(session: _Session, count: int, every_s: float) -> None:
    for n in range(count):
        session.receive(_delivery(n))
        await asyncio.sleep(every_s)  # the trickle itself: messages a few ms apart


async def test_a_telemetry_trickle_is_committed_in_batches(tmp_path: Path) -> None:
    lane, session, outbox = await _lane(tmp_path, linger_s=0.2)
    async with asyncio.TaskGroup() as tg:
        worker = tg.create_task(lane.run())
        await _trickle(session, 10, 0.005)
        await eventually(lambda: sum(session.acks) == 10, 5, "every message acknowledged")
        worker.cancel()
    assert len(session.acks) <= 3, session.acks  # one commit for most of the trickle
    await outbox.close()


async def test_without_linger_every_message_of_a_trickle_is_its_own_commit(
    tmp_path: Path,
) -> None:
    lane, session, outbox = await _lane(tmp_path, linger_s=0.0)  # as the alarm lane runs
    async with asyncio.TaskGroup() as tg:
        worker = tg.create_task(lane.run())
        await _trickle(session, 10, 0.02)
        await eventually(lambda: sum(session.acks) == 10, 5, "every message acknowledged")
        worker.cancel()
    assert session.acks == [1] * 10
    await outbox.close()


async def test_a_linger_ends_at_a_gap_when_a_full_window_came(tmp_path: Path) -> None:
    # a broker whose in-flight window is full (RabbitMQ's MQTT default: 10) sends nothing until we
    # ack: waiting the whole linger would only cost throughput
    lane, session, outbox = await _lane(tmp_path, linger_s=10.0)
    loop = asyncio.get_running_loop()
    window = GAP_ENDS_LINGER_AT
    async with asyncio.TaskGroup() as tg:
        worker = tg.create_task(lane.run())
        started = loop.time()
        for n in range(window):
            session.receive(_delivery(n))
        await eventually(lambda: sum(session.acks) == window, 5, "the window acknowledged")
        waited = loop.time() - started
        worker.cancel()
    assert session.acks == [window]
    assert waited < 5.0  # the gap (GAP_S) ended it, not the 10 s linger
    await outbox.close()


async def test_a_trickle_smaller_than_a_window_waits_the_whole_linger(tmp_path: Path) -> None:
    # a gap in a trickle is not a full window: one commit per linger, not one per gap
    lane, session, outbox = await _lane(tmp_path, linger_s=0.4)
    loop = asyncio.get_running_loop()
    async with asyncio.TaskGroup() as tg:
        worker = tg.create_task(lane.run())
        started = loop.time()
        session.receive(_delivery(0))
        await asyncio.sleep(0.15)  # past the gap (0.1 s)
        session.receive(_delivery(1))
        await eventually(lambda: sum(session.acks) == 2, 5, "both acknowledged")
        waited = loop.time() - started
        worker.cancel()
    assert session.acks == [2]
    assert waited >= 0.4
    await outbox.close()


class _CountingSink(MemorySink):
    """A MemorySink that notes the size of each write of readings."""

    def __init__(self, name: str, lanes: frozenset[Lane]) -> None:
        super().__init__(name, lanes)
        self.writes: list[int] = []

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        self.writes.append(len(readings))
        await super().write_readings(readings)


async def test_a_readings_sink_writes_a_trickle_in_one_batch_an_events_sink_at_once(
    tmp_path: Path,
) -> None:
    readings = _CountingSink("tsdb", frozenset({"readings"}))
    events = MemorySink("alerts", frozenset({"events"}))
    outbox = Outbox(
        tmp_path / "outbox.db",
        {s.name: s.lanes for s in (readings, events)},
        now=FakeClock(AT).now,
    )
    lingering = Forwarder(outbox, readings, clock=FakeClock(), linger_s=0.3)
    prompt = Forwarder(outbox, events, clock=FakeClock(), linger_s=0.3)
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(lingering.run()), tg.create_task(prompt.run())]
        await asyncio.sleep(0)  # both forwarders wait on the outbox
        for n in range(5):
            await outbox.commit([_reading(n)])
        event: AlertEvent = opened_event(1)
        await outbox.commit(events=[event])
        await eventually(lambda: events.events == [event], 0.25, "the alert event, no linger")
        await eventually(lambda: len(readings.readings) == 5, 5, "the five readings")
        for task in tasks:
            task.cancel()
    assert readings.writes == [5]
    await outbox.close()


async def test_a_commit_of_readings_wakes_no_sink_of_alert_events(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", {}, now=FakeClock(AT).now)
    for_events = outbox.waiter(frozenset({"events"}))
    for_readings = outbox.waiter(frozenset({"readings"}))
    await outbox.commit([_reading(1)])
    assert (for_events.is_set(), for_readings.is_set()) == (False, True)
    await outbox.commit(events=[opened_event(2)])
    assert for_events.is_set()
    await outbox.close()


class _AlarmPipeline(_Pipeline):
    """Readings, except that a payload of b"sos" also raises an alert."""

    def handle(self, raw: RawMessage, retained: bool = False) -> Output:
        out = super().handle(raw, retained)
        if raw.payload == b"sos":
            out.events.append(opened_event(self.count))
        return out


async def test_an_alarm_ends_a_linger_at_once_and_takes_the_routine_messages_before_it(
    tmp_path: Path,
) -> None:
    # the alarm lane lingers for its routine traffic (heartbeats, batteries) like telemetry,
    # but a message that raises an alert is committed as soon as it is handled
    outbox = Outbox(tmp_path / "outbox.db", {}, now=FakeClock(AT).now)
    sessions: list[_Session] = []

    def make(receive: Callable[[Delivery], None], started: Callable[[bool], None]) -> MqttSession:
        sessions.append(_Session(receive))
        return cast(MqttSession, sessions[-1])

    lane = IngestLane(
        "alarm", make, _AlarmPipeline(), outbox, batch_max=100, linger_s=30.0, urgent=True
    )
    session = sessions[0]
    loop = asyncio.get_running_loop()
    async with asyncio.TaskGroup() as tg:
        worker = tg.create_task(lane.run())
        for n in range(3):
            session.receive(_delivery(n))
            await asyncio.sleep(0.002)  # well inside the gap (7.5 s): the linger goes on
        started = loop.time()
        session.receive(Delivery("ce/c1/b1/sos/d9", b"sos", 99, 1, AT, 0))
        await eventually(lambda: sum(session.acks) == 4, 5, "the alarm and the three before it")
        waited = loop.time() - started
        worker.cancel()
    assert session.acks == [4]  # one commit: the alarm took the routine messages with it
    assert waited < 1.0  # not the 30 s linger, nor its 7.5 s gap
    events = [e for _, e in await outbox.fetch("x", "events", 10) if isinstance(e, AlertEvent)]
    assert [e.alert.id for e in events] == ["a4"]
    await outbox.close()


async def test_a_sink_of_readings_gathers_its_alert_events_with_them(tmp_path: Path) -> None:
    # the time-series store takes alert events too (for dashboards): a trickle of readings and
    # an event go in one linger's writes, not a write per commit
    both = _CountingSink("tsdb", frozenset({"readings", "events"}))
    outbox = Outbox(tmp_path / "outbox.db", {both.name: both.lanes}, now=FakeClock(AT).now)
    forwarder = Forwarder(outbox, both, clock=FakeClock(), linger_s=2.0)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(forwarder.run())
        await outbox.commit([_reading(0)])  # the first write of a quiet sink goes at once
        await eventually(lambda: both.writes == [1], 1.0, "the first reading")
        event: AlertEvent = opened_event(1)
        for n in range(1, 5):
            await outbox.commit([_reading(n)], events=[event] if n == 2 else [])
            await asyncio.sleep(0.01)  # a trickle: commits land while the sink waits
        # delivered counts after the outbox's cursor moved, which follows the sink's write: waiting
        # for the sink's readings alone raced it under load (writes 2, delivered 2)
        await eventually(lambda: forwarder.status.delivered == 6, 10.0, "the readings and event")
        task.cancel()
    assert both.writes == [1, 4]
    assert both.events == [event]
    assert forwarder.status.writes == 3  # the first reading; then the event, the four readings
    await outbox.close()


async def test_urgent_and_ordinary_commits_interleave_without_loss(tmp_path: Path) -> None:
    # two threads, two connections, one file: every entry once, in commit order
    outbox = Outbox(tmp_path / "outbox.db", {}, now=FakeClock(AT).now)
    await asyncio.gather(
        *(outbox.commit([_reading(n)], urgent=n % 2 == 0) for n in range(40)),
        *(outbox.commit(events=[opened_event(n)], urgent=n % 3 == 0) for n in range(10)),
    )
    rows = await outbox.fetch("x", "readings", 100)
    readings = [r for _, r in rows if isinstance(r, Reading)]
    events = [e for _, e in await outbox.fetch("x", "events", 100) if isinstance(e, AlertEvent)]
    assert sorted(r.seq or 0 for r in readings) == list(range(40))
    assert [seq for seq, _ in rows] == sorted(seq for seq, _ in rows)
    assert sorted(e.alert.id for e in events) == sorted(f"a{n}" for n in range(10))
    await outbox.close()


def _lanes(
    tmp_path: Path, pipeline: _Pipeline
) -> tuple[IngestLane, _Session, IngestLane, _Session, Outbox]:
    """An alarm lane and a telemetry lane that yields to it, on one outbox and one pipeline."""
    outbox = Outbox(tmp_path / "outbox.db", {}, now=FakeClock(AT).now)
    sessions: list[_Session] = []

    def make(receive: Callable[[Delivery], None], started: Callable[[bool], None]) -> MqttSession:
        sessions.append(_Session(receive))
        return cast(MqttSession, sessions[-1])

    alarm = IngestLane("alarm", make, pipeline, outbox, batch_max=500, linger_s=0.02, urgent=True)
    telemetry = IngestLane(
        "telemetry", make, pipeline, outbox, batch_max=1000, linger_s=0.02, yields_to=alarm
    )
    return alarm, sessions[0], telemetry, sessions[1], outbox


async def test_telemetry_gives_way_while_an_alarm_is_handled_committed_and_stored(
    tmp_path: Path,
) -> None:
    # a telemetry flood and an SOS arrive together: no telemetry chunk runs on the event loop
    # between the SOS's arrival and its express delivery (stored, on the live stream)
    pipeline = _AlarmPipeline()
    alarm, alarm_session, telemetry, telemetry_session, outbox = _lanes(tmp_path, pipeline)
    handled_before_the_alarm_was_delivered: list[int] = []
    outbox.on_events(lambda events: handled_before_the_alarm_was_delivered.append(pipeline.count))
    for n in range(600):
        telemetry_session.receive(_delivery(n))
    alarm_session.receive(Delivery("ce/c1/b1/sos/d9", b"sos", 9, 1, AT, 0))
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(alarm.run()), tg.create_task(telemetry.run())]
        await eventually(lambda: sum(telemetry_session.acks) == 600, 10, "the flood")
        for task in tasks:
            task.cancel()
    assert alarm_session.acks == [1]
    assert handled_before_the_alarm_was_delivered == [1]  # the SOS alone, no telemetry chunk
    assert alarm.idle.is_set()
    await outbox.close()


async def test_a_lane_that_gives_way_waits_a_bounded_time(tmp_path: Path) -> None:
    # an alarm lane that never settles (its commits failing, a flood of alarms) slows telemetry
    # down to a chunk per YIELD_MAX_S, never to a stop
    _, _, telemetry, telemetry_session, outbox = _lanes(tmp_path, _Pipeline())
    assert telemetry.yields_to is not None
    telemetry.yields_to.idle.clear()  # an alarm in hand, for ever
    for n in range(3 * HANDLE_CHUNK):
        telemetry_session.receive(_delivery(n))
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(telemetry.run())
        await eventually(lambda: sum(telemetry_session.acks) == 3 * HANDLE_CHUNK, 10, "the acks")
        task.cancel()
    assert loop.time() - started >= 3 * YIELD_MAX_S
    await outbox.close()
