"""Readings read back as stored rows give the sinks exactly what readings read back whole gave."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from edge.clock import FakeClock
from edge.errors import SinkRejected
from edge.model import DeviceRef, FieldValue, Reading, ReadingFlag
from edge.outbox import Forwarder, Outbox, StoredReadingSink, read_row
from edge.outbox.outbox import _ReadingDecoder, encode_reading
from edge.sinks import ReadingQuery, ReadingStore
from edge.sinks.influx import reading_line, stored_reading_line
from edge.sinks.memory import MemorySink
from tests.fsyncs import note_fsyncs

# recent: the embedded store prunes what is older than its retention
AT = datetime.now(UTC).replace(microsecond=234000)


def _reading(
    i: int,
    fields: dict[str, FieldValue] | None = None,
    flags: tuple[ReadingFlag, ...] = (),
    unit: str | None = "u1",
) -> Reading:
    device = DeviceRef(f"d{i % 3}", "m-v1", "air_quality", "c 1", "b=1", unit)
    return Reading(
        device=device,
        fields=fields if fields is not None else {"co2": 400.0 + i, "n": i, "ok": True},
        at=AT + timedelta(milliseconds=i),
        received_at=AT,
        time_source="device",
        seq=i,
        flags=flags,
    )


READINGS = [
    _reading(0),
    _reading(1, {"state": "open", "note": 'a "b"\nc'}),
    _reading(2, flags=(ReadingFlag.TIME_PAST,)),
    _reading(3, unit=None),
]


@pytest.mark.parametrize("reading", READINGS)
def test_a_stored_reading_makes_the_line_of_the_reading(reading: Reading) -> None:
    assert stored_reading_line(encode_reading(reading)) == reading_line(reading)


def test_a_row_from_before_flags_reads_without_flags() -> None:
    old = orjson.dumps(orjson.loads(encode_reading(READINGS[2]))[:11])
    row = read_row(old)
    assert row.flags == ()
    assert stored_reading_line(old) == reading_line(_ReadingDecoder()(old))


def test_a_stored_reading_the_store_cannot_take_is_rejected_as_the_reading_was() -> None:
    bad = _reading(4, {"time": 1.0})  # a reserved field key
    with pytest.raises(SinkRejected) as by_reading:
        reading_line(bad)
    with pytest.raises(SinkRejected) as by_row:
        stored_reading_line(encode_reading(bad))
    assert str(by_row.value) == str(by_reading.value)


class RowSink(MemorySink):
    """Takes readings as stored rows, refusing the one whose seq is 2."""

    def __init__(self) -> None:
        super().__init__("rows", frozenset({"readings"}))
        self.rows: list[bytes] = []

    async def write_stored_readings(self, rows: Sequence[bytes]) -> None:
        if any(orjson.loads(body)[10] == 2 for body in rows):
            raise SinkRejected("400 bad point")
        self.rows.extend(rows)


async def test_a_sink_of_rows_gets_rows_and_a_refused_one_is_set_aside_as_a_reading(
    tmp_path: Path,
) -> None:
    sink = RowSink()
    assert isinstance(sink, StoredReadingSink)
    outbox = Outbox(tmp_path / "o.db", {sink.name: sink.lanes}, now=FakeClock(AT).now)
    readings = [_reading(i) for i in range(6)]
    await outbox.commit(readings)
    forwarder = Forwarder(outbox, sink, clock=FakeClock())
    assert await forwarder.drain() == 6
    decode = _ReadingDecoder()
    assert [decode(body) for body in sink.rows] == [r for r in readings if r.seq != 2]
    assert sink.readings == []
    assert outbox.rejected_entries == forwarder.status.rejected == 1
    await outbox.close()
    with closing(sqlite3.connect(tmp_path / "o.db")) as db:
        (body,) = db.execute("SELECT body FROM rejected").fetchone()
    assert Reading.model_validate_json(body) == readings[2]


async def test_the_embedded_store_keeps_stored_rows_as_it_kept_readings(tmp_path: Path) -> None:
    by_reading = ReadingStore(tmp_path / "a.db")
    by_row = ReadingStore(tmp_path / "b.db")
    await by_reading.write_readings(READINGS)
    await by_row.write_stored_readings([encode_reading(r) for r in READINGS])
    assert by_row.query(ReadingQuery()) == by_reading.query(ReadingQuery())
    assert by_row.count() == len(READINGS)
    await by_reading.close()
    await by_row.close()


async def test_the_embedded_store_syncs_its_writes_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Durable before the outbox's cursor moves past them, without the event loop waiting."""
    synced = note_fsyncs(monkeypatch)
    store = ReadingStore(tmp_path / "readings.db")
    await store.write_readings(READINGS[:2])
    await store.write_stored_readings([encode_reading(r) for r in READINGS[2:]])
    assert synced == [("readings.db-wal", False)] * 2
    assert store.count() == len(READINGS)
    await store.close()
