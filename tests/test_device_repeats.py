"""A device that sends an event again (same sequence or serial number, same device time) has it
stored once and counted once by every rule; a new serial number, or a new time, is a new event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from edge.agent import Agent, AgentConfig, Pipeline
from edge.alerts import AlertBook
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceHealth, DeviceRegistry
from edge.ingest import parse_mqtt_url
from edge.model import RawMessage
from edge.rules import RuleEngine

PROFILES = ProfileRegistry.load(default_profile_dir())
GATE = "ce/c1/b1/hikvision-access-controller/gate-1"
SOS = "ce/c1/b1/tuya-sos-button/sos-1"


def _denied(serial: int, second: int) -> bytes:
    return orjson.dumps(
        {
            "dateTime": f"2026-12-06T08:00:{second:02d}+08:00",
            "eventType": "AccessControllerEvent",
            "AccessControllerEvent": {
                "majorEventType": 5,
                "subEventType": 6,  # card has no permission: "denied"
                "doorNo": 1,
                "serialNo": serial,
            },
        }
    )


def _agent(tmp_path: Path, clock: FakeClock) -> Agent:
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    return Agent(config, PROFILES, DeviceRegistry(), [], clock)


async def test_an_event_repeated_five_times_is_one_swipe_for_the_counting_rule(
    tmp_path: Path,
) -> None:
    clock = FakeClock(datetime(2026, 12, 6, 0, 1, tzinfo=UTC))  # the swipes' times are sane
    async with _agent(tmp_path, clock) as agent:
        pipeline = agent.pipeline

        def send(topic: str, payload: bytes) -> tuple[int, list[str]]:
            clock.advance(0.2)
            out = pipeline.handle(RawMessage(topic=topic, payload=payload, received_at=clock.now()))
            return (out.reading is not None, [e.alert.rule for e in out.events])

        # four denied swipes, each sent five times by a controller that did not hear back
        results = [send(GATE, _denied(100 + n, n)) for n in range(4) for _ in range(5)]
        assert results == [(True, []), *[(False, [])] * 4] * 4
        assert (pipeline.readings, pipeline.device_repeats) == (4, 16)
        # the fifth distinct swipe within the minute is the fifth: the rule fires, once
        assert send(GATE, _denied(104, 4)) == (True, ["denied-swipes"])
        assert send(GATE, _denied(104, 4)) == (False, [])
        # same serial number at another time: the controller restarted its numbering; new event
        assert send(GATE, _denied(104, 9)) == (True, [])
        assert pipeline.device_repeats == 17


async def test_presses_repeated_with_their_sequence_are_one_press(tmp_path: Path) -> None:
    clock = FakeClock()
    async with _agent(tmp_path, clock) as agent:
        pipeline = agent.pipeline

        def press(seq: int, ts: int | None) -> list[str]:
            clock.advance(0.2)
            body = {"action": "emergency", "seq": seq} | ({"ts": ts} if ts is not None else {})
            raw = RawMessage(topic=SOS, payload=orjson.dumps(body), received_at=clock.now())
            return [e.kind.value for e in pipeline.handle(raw).events]

        ts = 1_767_225_600_000  # 2026-01-01T00:00:00Z, the fake clock's start
        assert press(7, ts) == ["opened"]
        assert press(7, ts) == []  # the same press again: no `repeated`
        assert press(8, ts + 5_000) == ["repeated"]  # a second press is a second press
        # without a device time: the same sequence number and the same fields are a repeat
        assert press(9, None) == ["repeated"]
        assert press(9, None) == []
        assert pipeline.device_repeats == 2


def _registry(tmp_path: Path, *device_ids: str) -> DeviceRegistry:
    devices = tmp_path / f"devices-{'-'.join(device_ids)}.csv"
    rows = "".join(f"{d},tuya-sos-button,c1,b1,1-10{n}\n" for n, d in enumerate(device_ids))
    devices.write_text("device_id,model,community,building,unit\n" + rows, encoding="utf-8")
    return DeviceRegistry.from_file(devices, PROFILES)


def _press(pipeline: Pipeline, clock: FakeClock, device_id: str, seq: int) -> list[str]:
    clock.advance(0.2)
    body = orjson.dumps({"action": "emergency", "seq": seq, "ts": 1_767_225_600_000 + seq % 1000})
    raw = RawMessage(f"ce/c1/b1/tuya-sos-button/{device_id}", body, clock.now())
    return [e.kind.value for e in pipeline.handle(raw).events]


def _pipeline(
    registry: DeviceRegistry, clock: FakeClock, last_sequences: dict[str, int] | None = None
) -> Pipeline:
    return Pipeline(
        PROFILES,
        registry,
        RuleEngine(PROFILES),
        AlertBook(clock),
        DeviceHealth(clock, PROFILES),
        last_sequences=last_sequences,
    )


async def test_a_registry_reload_keeps_each_devices_last_event_and_sequence(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    registry = _registry(tmp_path, "sos-1", "sos-2")
    async with Agent(config, PROFILES, registry, [], clock) as agent:
        pipeline = agent.pipeline
        assert _press(pipeline, clock, "sos-2", 7) == ["opened"]
        # sos-1 removed, sos-3 added: sos-2 moves from slot 1 to slot 0
        agent.use_registry(_registry(tmp_path, "sos-2", "sos-3"))
        assert _press(pipeline, clock, "sos-2", 7) == []  # still a repeat
        assert _press(pipeline, clock, "sos-3", 7) == ["opened"]  # not sos-2's event
        assert _press(pipeline, clock, "sos-2", 10) == ["repeated"]
        assert (pipeline.device_repeats, pipeline.sequence_gaps) == (1, 2)  # 8 and 9 lost


async def test_a_gap_across_a_restart_counts_from_the_sequences_the_outbox_kept(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    registered = _pipeline(_registry(tmp_path, "sos-1", "sos-2"), clock, {"sos-2": 5, "gone": 1})
    _press(registered, clock, "sos-2", 9)
    _press(registered, clock, "sos-1", 9)  # nothing kept for it: no gap
    assert (registered.sequence_gaps, registered.sequence_repeats) == (3, 0)
    assert registered.take_sequences() == {"sos-2": 9, "sos-1": 9}
    # without a registry the outbox keys a device by community, building and id
    enrolled = _pipeline(DeviceRegistry(), clock, {"c1/b1/sos-2": 5})
    _press(enrolled, clock, "sos-2", 9)
    _press(enrolled, clock, "sos-2", 9)  # its repeat
    _press(enrolled, clock, "sos-2", 9 - 4)  # numbering restarted
    assert (enrolled.sequence_gaps, enrolled.sequence_repeats, enrolled.device_repeats) == (3, 1, 1)
    assert enrolled.take_sequences() == {"c1/b1/sos-2": 5}


async def test_a_sequence_number_beyond_a_signed_64_bit_integer_is_handled_not_followed(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    pipeline = _pipeline(_registry(tmp_path, "sos-1"), clock)
    # JSON numbers reach 2**64 - 1 as integers (orjson); the per-device state holds 2**63 - 1
    assert _press(pipeline, clock, "sos-1", 2**64 - 1) == ["opened"]
    _press(pipeline, clock, "sos-1", 2**64 - 1)  # handled again, not recognised as a repeat
    assert (pipeline.readings, pipeline.device_repeats, pipeline.sequence_gaps) == (2, 0, 0)
