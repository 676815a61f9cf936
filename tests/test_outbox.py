"""The outbox keeps what was committed until each sink has it, sheds only readings, survives corruption."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.alerts import AlertStore, AlertStoreSink, AlertStream
from edge.clock import FakeClock
from edge.errors import SinkRejected, SinkUnavailable
from edge.model import (
    AlertEvent,
    DeadLetter,
    DeviceRef,
    Reading,
)
from edge.outbox import Forwarder, Outbox
from edge.outbox.outbox import DELETE_DELIVERED_AT, FOLD_SEQUENCES_AT
from edge.sinks.memory import MemorySink
from tests.factories import opened_event
from tests.fsyncs import note_fsyncs
from tests.waiting import eventually

AT = datetime(2026, 11, 23, tzinfo=UTC)
DEVICE = DeviceRef(device_id="d1", model="m", category="smoke", community="c1", building="b1")


def _reading(i: int) -> Reading:
    return Reading(
        device=DEVICE,
        fields={"battery": float(i), "smoke": False, "state": "ok"},
        at=AT + timedelta(milliseconds=i),
        received_at=AT,
        time_source="device",
        seq=i,
    )


def _event(i: int) -> AlertEvent:
    return opened_event(i)


def _outbox(path: Path, sinks: Sequence[MemorySink], **kw: int) -> Outbox:
    return Outbox(path, {s.name: s.lanes for s in sinks}, now=FakeClock(AT).now, **kw)


async def test_committed_entries_reach_every_sink_events_first(tmp_path: Path) -> None:
    a, b = MemorySink("a"), MemorySink("b", frozenset({"readings"}))
    outbox = _outbox(tmp_path / "o.db", [a, b])
    await outbox.commit([_reading(i) for i in range(5)], [_event(1)])
    fa = Forwarder(outbox, a, clock=FakeClock())
    first = await fa.deliver_once()
    assert first == 1
    assert a.events == [_event(1)]
    assert a.readings == []
    assert await fa.drain() == 5
    assert await Forwarder(outbox, b, clock=FakeClock()).drain() == 5
    assert a.readings == b.readings == [_reading(i) for i in range(5)]
    assert all(d.depth == 0 for d in await outbox.depths())
    await outbox.close()


async def test_undelivered_entries_survive_a_restart(tmp_path: Path) -> None:
    sink = MemorySink()
    outbox = _outbox(tmp_path / "o.db", [sink])
    await outbox.commit([_reading(i) for i in range(3)], [_event(1)])
    await outbox.close()
    reopened = _outbox(tmp_path / "o.db", [sink])
    assert await Forwarder(reopened, sink, clock=FakeClock()).drain() == 4
    assert sink.readings == [_reading(i) for i in range(3)]
    await reopened.close()


class FlakySink(MemorySink):
    def __init__(self) -> None:
        super().__init__("flaky")
        self.down = True
        self.poison = {2}

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        if self.down:
            raise SinkUnavailable("connection refused")
        if any(r.seq in self.poison for r in readings):
            raise SinkRejected("400 bad point")
        await super().write_readings(readings)


async def test_unavailable_sink_keeps_entries_and_a_rejected_entry_is_set_aside(
    tmp_path: Path,
) -> None:
    sink = FlakySink()
    outbox = _outbox(tmp_path / "o.db", [sink])
    await outbox.commit([_reading(i) for i in range(6)])
    forwarder = Forwarder(outbox, sink, clock=FakeClock())
    with pytest.raises(SinkUnavailable):
        await forwarder.deliver_once()
    assert sum(d.depth for d in await outbox.depths()) == 6
    sink.down = False
    await forwarder.drain()
    assert [r.seq for r in sink.readings] == [0, 1, 3, 4, 5]
    assert outbox.rejected_entries == 1
    assert forwarder.status.rejected == 1
    await outbox.close()


async def _until(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    for _ in range(int(within_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_forwarder_retries_until_the_sink_returns(tmp_path: Path) -> None:
    sink = FlakySink()
    sink.poison = set()
    outbox = _outbox(tmp_path / "o.db", [sink])
    await outbox.commit([_reading(i) for i in range(3)])
    forwarder = Forwarder(
        outbox, sink, clock=FakeClock(), backoff_initial_s=0.01, backoff_max_s=0.02
    )
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(forwarder.run())
        await _until(lambda: forwarder.status.errors >= 3)
        sink.down = False
        # the status is updated just after the write returns: wait for both, not the write alone
        await _until(lambda: len(sink.readings) == 3 and forwarder.status.failing_since is None)
        task.cancel()
    assert forwarder.status.failing_since is None
    await outbox.close()


async def test_at_the_cap_oldest_readings_are_shed_and_events_kept(tmp_path: Path) -> None:
    sink = MemorySink()
    outbox = _outbox(tmp_path / "o.db", [sink], max_bytes=256 * 1024)
    for batch in range(40):
        await outbox.commit([_reading(batch * 100 + i) for i in range(100)], [_event(batch)])
    assert outbox.shed_readings > 0
    await Forwarder(outbox, sink, clock=FakeClock()).drain()
    assert len(sink.events) == 40  # never shed
    assert len(sink.readings) + outbox.shed_readings == 4000
    kept = [r.seq or 0 for r in sink.readings]
    assert kept == sorted(kept)
    assert kept[-1] == 3999  # the oldest went first
    await outbox.close()


async def test_corrupt_outbox_is_moved_aside_and_a_fresh_one_started(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(b"this is not a database" * 1000)
    outbox = _outbox(path, [MemorySink()])
    assert outbox.recovered_from is not None
    assert outbox.recovered_from.exists()
    await outbox.commit([_reading(1)])
    assert sum(d.depth for d in await outbox.depths()) == 1
    assert path.stat().st_mode & 0o777 == 0o600
    await outbox.close()


async def test_dead_letters_are_kept_newest_first(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path / "o.db", [MemorySink()])
    letters = [
        DeadLetter(topic=f"t/{i}", payload=b"x", cause="not_json", detail="d", received_at=AT)
        for i in range(3)
    ]
    await outbox.commit(dead_letters=letters)
    assert [d.topic for d in await outbox.dead_letters()] == ["t/2", "t/1", "t/0"]
    await outbox.close()


async def test_at_the_cap_readings_that_raised_alerts_go_after_routine_ones(tmp_path: Path) -> None:
    sink = MemorySink()
    outbox = _outbox(tmp_path / "o.db", [sink], max_bytes=256 * 1024)
    alarms = [_reading(100_000 + i) for i in range(5)]
    await outbox.commit(alarm_readings=alarms)  # the oldest entries of all
    for batch in range(40):
        await outbox.commit([_reading(batch * 100 + i) for i in range(100)])
    assert outbox.shed_readings > 0
    await Forwarder(outbox, sink, clock=FakeClock()).drain()
    assert sink.readings[:5] == alarms
    assert len(sink.readings) + outbox.shed_readings == 4005


async def test_oversized_dead_letters_are_truncated(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path / "o.db", [MemorySink()])
    big = DeadLetter(
        topic="t", payload=b"x" * 70_000, cause="too_large", detail="d", received_at=AT
    )
    await outbox.commit(dead_letters=[big])
    [kept] = await outbox.dead_letters()
    assert len(kept.payload) == 4096
    assert "first 4096 of 70000 bytes kept" in kept.detail
    await outbox.close()


async def test_committed_alert_events_reach_express_listeners_once_on_disk(
    tmp_path: Path,
) -> None:
    outbox = _outbox(tmp_path / "o.db", [MemorySink()])
    seen: list[tuple[list[AlertEvent], int]] = []

    def listener(events: Sequence[AlertEvent]) -> None:
        # another connection already reads them: the commit is done before the listener runs
        with closing(sqlite3.connect(tmp_path / "o.db")) as other:
            stored = other.execute("SELECT count(*) FROM events").fetchone()[0]
        seen.append((list(events), stored))

    outbox.on_events(listener)
    await outbox.commit([_reading(1)])
    assert seen == []  # readings alone are nobody's alert
    await outbox.commit([_reading(2)], [_event(1), _event(2)])
    assert seen == [([_event(1), _event(2)], 2)]
    await outbox.close()


async def test_a_failing_express_listener_fails_no_commit_and_the_forwarder_delivers(
    tmp_path: Path,
) -> None:
    sink = MemorySink()
    outbox = _outbox(tmp_path / "o.db", [sink])

    def broken(events: Sequence[AlertEvent]) -> None:
        raise OSError("disk full")

    outbox.on_events(broken)
    await outbox.commit(events=[_event(1)])  # does not raise: a lane would commit it again
    await Forwarder(outbox, sink, clock=FakeClock()).drain()
    assert sink.events == [_event(1)]
    await outbox.close()


async def test_the_express_path_and_the_forwarder_store_and_stream_an_event_once(
    tmp_path: Path,
) -> None:
    store, stream = AlertStore(tmp_path / "alerts.db"), AlertStream()
    store_sink = AlertStoreSink(store, stream)
    outbox = Outbox(tmp_path / "o.db", {store_sink.name: store_sink.lanes}, now=FakeClock(AT).now)
    outbox.on_events(store_sink.show)
    with stream.subscription() as live:
        await outbox.commit(events=[_event(1)])
        assert live.get_nowait() == _event(1)  # on the stream before commit() returned
        assert store.get("a1") is not None
        # the forwarder delivers the same event from the outbox: ignored by id
        assert await Forwarder(outbox, store_sink, clock=FakeClock()).drain() == 1
        assert live.empty()
    assert store.history("a1") == [_event(1)]
    assert stream.published == 1
    await outbox.close()
    store.close()


async def test_the_express_path_does_not_wait_for_the_disk_the_forwarders_copy_syncs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut between the two loses nothing: the forwarder's cursor moves only after its
    copy returned, and that copy syncs the log the express path left unsynced, on a thread (the
    event loop handles messages meanwhile)."""
    synced = note_fsyncs(monkeypatch)
    store, stream = AlertStore(tmp_path / "alerts.db"), AlertStream()
    store_sink = AlertStoreSink(store, stream)
    outbox = Outbox(tmp_path / "o.db", {store_sink.name: store_sink.lanes}, now=FakeClock(AT).now)
    outbox.on_events(store_sink.show)
    forwarder = Forwarder(outbox, store_sink, clock=FakeClock())
    off_the_loop = ("alerts.db-wal", False)
    await outbox.commit(events=[_event(1)])
    assert store.get("a1") is not None
    assert synced == []  # stored and streamed without waiting for the disk
    assert await forwarder.drain() == 1
    assert synced == [off_the_loop]  # before the cursor moved past it
    assert await forwarder.drain() == 0
    await outbox.commit(events=[_event(2)])
    assert await forwarder.drain() == 1
    assert synced == [off_the_loop] * 2
    # an event the express path never saw: stored by the copy, and synced the same way
    await store_sink.write_events([_event(3)])
    assert store.get(_event(3).alert.id) is not None
    assert synced == [off_the_loop] * 3
    await outbox.close()
    store.close()


async def test_rows_every_sink_has_are_deleted_in_bulk_and_never_fetched_again(
    tmp_path: Path,
) -> None:
    sink = MemorySink("a", frozenset({"readings"}))
    outbox = _outbox(tmp_path / "o.db", [sink])
    forwarder = Forwarder(outbox, sink, clock=FakeClock())

    def rows() -> int:
        with closing(sqlite3.connect(tmp_path / "o.db")) as conn:
            return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])

    await outbox.commit([_reading(i) for i in range(DELETE_DELIVERED_AT + 100)])
    assert await forwarder.drain() == DELETE_DELIVERED_AT + 100
    kept = rows()
    assert kept < DELETE_DELIVERED_AT  # enough delivered rows gathered: deleted
    await outbox.commit([_reading(i) for i in range(10)])
    assert await forwarder.drain() == 10
    assert rows() == kept + 10  # delivered, kept until more gather (a delete per move cost pages)
    assert await forwarder.drain() == 0  # and never given again
    await outbox.close()


async def test_device_sequences_come_back_at_start_folded_or_not(tmp_path: Path) -> None:
    """One log row per commit, folded into a row per device now and then: what a restart reads
    is each device's last sequence number either way."""
    outbox = _outbox(tmp_path / "o.db", [MemorySink("a")])
    commits = FOLD_SEQUENCES_AT * 2 + 7  # two folds, and seven commits after the last
    for n in range(commits):
        await outbox.commit([_reading(n)], sequences={f"d{n % 5}": n, "every": n})
    await outbox.close()

    reopened = _outbox(tmp_path / "o.db", [MemorySink("a")])
    assert reopened.last_sequences() == {
        **{f"d{k}": max(n for n in range(commits) if n % 5 == k) for k in range(5)},
        "every": commits - 1,
    }
    with closing(sqlite3.connect(tmp_path / "o.db")) as conn:
        assert conn.execute("SELECT count(*) FROM sequence_log").fetchone()[0] == 7
    await reopened.close()


async def test_a_long_sequence_log_is_folded_in_jobs_of_a_few_thousand_numbers(
    tmp_path: Path,
) -> None:
    """After a burst each row holds a thousand numbers: folded a chunk at a time, so that an
    SOS's commit waits for one chunk at most, and every number still comes back at start."""
    outbox = _outbox(tmp_path / "o.db", [MemorySink("a")])
    devices = 1000
    for n in range(FOLD_SEQUENCES_AT):
        await outbox.commit(
            [_reading(n)], sequences={f"d{k}": n * devices + k for k in range(devices)}
        )
    await eventually(
        lambda: _log_rows(tmp_path / "o.db") < FOLD_SEQUENCES_AT // 2,
        what="the log folded down, chunk after chunk",
    )
    await outbox.close()
    reopened = _outbox(tmp_path / "o.db", [MemorySink("a")])
    last = FOLD_SEQUENCES_AT - 1
    assert reopened.last_sequences() == {f"d{k}": last * devices + k for k in range(devices)}
    await reopened.close()


def _log_rows(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM sequence_log").fetchone()[0])
