"""A device that sends an event again (same sequence or serial number, same device time) has it
stored once and counted once by every rule; a new serial number, or a new time, is a new event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from edge.model import RawMessage

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
