"""Every reading says what it knows: a device time replaced by the receive time (missing, zero,
unreadable, in another unit, far future or past) and a payload naming another device than its
topic are flagged, and the flag reaches the outbox, the embedded store, line protocol and the
pipeline's counter."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, decode, default_profile_dir
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from edge.model import DeviceRef, RawMessage, Reading, ReadingFlag
from edge.outbox.outbox import _ReadingDecoder, encode_reading
from edge.sinks import ReadingQuery, ReadingStore
from edge.sinks.influx import reading_line

PROFILES = ProfileRegistry.load(default_profile_dir())
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
SOS = "ce/c1/b1/tuya-sos-button/sos-1"  # `ts`, epoch_auto
METER = "ce/c1/b1/nbiot-water-meter/nwm-1"  # `timestamp`, epoch_ms
GATE = "ce/c1/b1/hikvision-access-controller/gate-1"  # `dateTime`, iso8601
SMOKE = "ce/c1/b1/lorawan-smoke-detector/lsm-1"  # names itself in deviceInfo.deviceName
SMOKE_FRAME = "AF8A1w=="


def _decode(topic: str, payload: dict[str, object]) -> tuple[datetime, str, list[str]]:
    raw = RawMessage(topic=topic, payload=orjson.dumps(payload), received_at=NOW)
    decoded = decode(raw, PROFILES)
    return decoded.at, decoded.time_source, [f.value for f in decoded.flags]


def _meter(timestamp: object) -> dict[str, object]:
    return {"IMEI": "861234056789012", "payload_hex": "001b4a06001c0e09", "timestamp": timestamp}


def _gate(date_time: object) -> dict[str, object]:
    return {"dateTime": date_time, "eventType": "heartBeat"}


@pytest.mark.parametrize(
    ("topic", "payload", "flag"),
    [
        (SOS, {"action": "emergency"}, "time_missing"),
        (SOS, {"action": "emergency", "ts": None}, "time_missing"),
        (SOS, {"action": "emergency", "ts": 0}, "time_zero"),
        (SOS, {"action": "emergency", "ts": -5}, "time_zero"),
        (SOS, {"action": "emergency", "ts": "yesterday"}, "time_unreadable"),
        (SOS, {"action": "emergency", "ts": True}, "time_unreadable"),
        (SOS, {"action": "emergency", "ts": NOW_MS + 3_600_000}, "time_future"),
        (SOS, {"action": "emergency", "ts": NOW_MS - 30 * 86_400_000}, "time_past"),
        (SOS, {"action": "emergency", "ts": 1e300}, "time_future"),
        # the profile says milliseconds; the device sends seconds (or microseconds)
        (METER, _meter(NOW_MS // 1000), "time_unit"),
        (METER, _meter(NOW_MS * 1000), "time_unit"),
        (METER, _meter(NOW_MS + 86_400_000 * 30), "time_future"),
        (GATE, _gate("2026-12-06 11:00:00"), "time_unreadable"),  # no offset
        (GATE, _gate(1_796_000_000), "time_unreadable"),
        (GATE, _gate("2026-12-06T11:00:00+08:00"), None),
        (GATE, _gate("2027-12-06T11:00:00+08:00"), "time_future"),
        (SOS, {"action": "emergency", "ts": NOW_MS - 1_000}, None),
        (SOS, {"action": "emergency", "ts": NOW_MS // 1000 - 1}, None),  # epoch_auto: seconds
        (METER, _meter(NOW_MS - 1_000), None),
    ],
)
def test_a_replaced_device_time_is_flagged_with_why(
    topic: str, payload: dict[str, object], flag: str | None
) -> None:
    at, source, flags = _decode(topic, payload)
    if flag is None:
        assert (source, flags) == ("device", [])
    else:
        assert (at, source, flags) == (NOW, "gateway", [flag])


def test_a_zigbee2mqtt_message_without_its_optional_time_is_flagged_missing() -> None:
    at, source, flags = _decode("ce/c1/b1/zigbee-door-contact/d1", {"contact": True, "battery": 90})
    assert (at, source, flags) == (NOW, "gateway", ["time_missing"])


def test_a_payload_naming_another_device_keeps_the_topics_device_and_is_flagged() -> None:
    smoke = {"data": SMOKE_FRAME, "time": "2026-12-06T02:59:59Z"}
    raw = RawMessage(
        topic=SMOKE,
        payload=orjson.dumps({**smoke, "deviceInfo": {"deviceName": "lsm-9"}}),
        received_at=NOW,
    )
    decoded = decode(raw, PROFILES)
    assert decoded.device_id == "lsm-1"
    assert decoded.flags == (ReadingFlag.DEVICE_MISMATCH,)
    # its own name, or no name at all: nothing to flag
    for named in ({"deviceInfo": {"deviceName": "lsm-1"}}, {}):
        _, _, flags = _decode(SMOKE, {**smoke, **named})
        assert flags == []
    # both at once, in ReadingFlag order
    _, _, flags = _decode(SMOKE, {"data": SMOKE_FRAME, "deviceInfo": {"deviceName": "x"}})
    assert flags == ["time_missing", "device_mismatch"]


def _reading(flags: tuple[ReadingFlag, ...]) -> Reading:
    return Reading(
        device=DeviceRef("sos-1", "tuya-sos-button", "sos", "c1", "b1", "u1"),
        fields={"action": "emergency", "battery": 80},
        at=NOW,
        received_at=NOW,
        time_source="gateway",
        flags=flags,
    )


def test_flags_survive_the_outbox_and_old_rows_read_without_them() -> None:
    flagged = _reading((ReadingFlag.TIME_ZERO, ReadingFlag.DEVICE_MISMATCH))
    decoded = _ReadingDecoder()(encode_reading(flagged))
    assert decoded.flags == flagged.flags
    assert decoded.model_dump() == flagged.model_dump()
    old_row = orjson.loads(encode_reading(flagged))[:11]  # a row from before flags
    assert _ReadingDecoder()(orjson.dumps(old_row)).flags == ()


def test_flags_are_fields_in_line_protocol_not_tags() -> None:
    line = reading_line(_reading((ReadingFlag.TIME_PAST,)))
    series, fields, at = line.split(" ")
    assert "flag" not in series
    assert fields.endswith(",flag_time_past=1i")
    assert at == str(NOW_MS)
    assert "flag_" not in reading_line(_reading(()))


async def test_the_embedded_store_keeps_flags_and_migrates_an_old_file(tmp_path: Path) -> None:
    path = tmp_path / "readings.db"
    with sqlite3.connect(path) as conn:  # the schema of version 1, before readings had flags
        conn.executescript(
            """
            CREATE TABLE readings (
                device_id TEXT NOT NULL, at_ms INTEGER NOT NULL, category TEXT NOT NULL,
                community TEXT NOT NULL, building TEXT NOT NULL, model TEXT NOT NULL,
                fields BLOB NOT NULL,
                PRIMARY KEY (device_id, at_ms, community, building, model)
            ) WITHOUT ROWID;
            INSERT INTO readings VALUES ('old-1', 1, 'sos', 'c1', 'b1', 'm', '{"battery":1}');
            PRAGMA user_version = 1;
            """
        )
    conn.close()
    store = ReadingStore(path, retention_days=100_000)
    try:
        await store.write_readings([_reading((ReadingFlag.TIME_UNIT,))])
        by_device = {r.device_id: r.flags for r in store.query(ReadingQuery())}
    finally:
        await store.close()
    assert by_device == {"sos-1": [ReadingFlag.TIME_UNIT], "old-1": []}


async def test_the_pipeline_counts_flagged_readings_by_flag(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    async with Agent(config, PROFILES, DeviceRegistry(), [], clock) as agent:
        pipeline = agent.pipeline
        payloads = [
            (SOS, {"action": "emergency", "ts": 0}),
            (SOS, {"action": "emergency", "ts": 0, "battery": 50}),
            (SMOKE, {"data": SMOKE_FRAME, "time": "2026-12-06T02:59:59Z", "deviceInfo": {}}),
            (SMOKE, {"data": SMOKE_FRAME, "deviceInfo": {"deviceName": "other"}}),
            (SOS, {"action": "emergency", "ts": NOW_MS}),
        ]
        readings = []
        for topic, payload in payloads:
            clock.advance(1)
            raw = RawMessage(topic=topic, payload=orjson.dumps(payload), received_at=clock.now())
            out = pipeline.handle(raw)
            assert out.reading is not None
            readings.append([f.value for f in out.reading.flags])
        assert readings == [
            ["time_zero"],
            ["time_zero"],
            [],
            ["time_missing", "device_mismatch"],
            [],
        ]
        assert dict(pipeline.flagged) == {
            ReadingFlag.TIME_ZERO: 2,
            ReadingFlag.TIME_MISSING: 1,
            ReadingFlag.DEVICE_MISMATCH: 1,
        }


def test_flags_judge_device_time_against_the_window_edges() -> None:
    # just inside the window is the device's time; just outside, replaced
    inside = NOW - timedelta(days=6, hours=23)
    outside = NOW - timedelta(days=7, seconds=1)
    _, source, flags = _decode(SOS, {"action": "emergency", "ts": int(inside.timestamp() * 1000)})
    assert (source, flags) == ("device", [])
    _, source, flags = _decode(SOS, {"action": "emergency", "ts": int(outside.timestamp() * 1000)})
    assert (source, flags) == ("gateway", ["time_past"])


def test_the_simulators_skewed_clocks_are_flagged_by_what_went_wrong() -> None:
    from simulators.faults import FaultInjector, FaultKind
    from tests.test_fault_injection import RECEIVED, _run

    seen: Counter[tuple[str, ...]] = Counter()
    for outgoing in _run(FaultInjector(1.0, [FaultKind.SKEWED_TIME], seed=4), 300):
        message = outgoing.message
        decoded = decode(RawMessage(message.topic, message.payload, RECEIVED), PROFILES)
        flags = tuple(f.value for f in decoded.flags)
        # the device's own time (an hour behind, or seconds that epoch_auto recognised) is
        # kept and unflagged; a replaced one says why, once
        assert (decoded.time_source == "gateway") == bool(flags), flags
        seen[flags] += 1
    assert set(seen) >= {(), ("time_zero",), ("time_future",)}
    assert set(seen) <= {
        (),
        ("time_zero",),
        ("time_future",),
        ("time_unit",),
        ("time_unreadable",),
        ("time_past",),  # zero as an ISO time: 1970-01-01, a clock never set
    }
