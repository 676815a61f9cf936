"""The pipeline told a message is retained (alarm lane): an alarm is recorded as stale, a state
(Zigbee2MQTT's retained availability) is current and handled as usual."""

from __future__ import annotations

from pathlib import Path

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from edge.model import RawMessage

PROFILES = ProfileRegistry.load(default_profile_dir())
SOS = "ce/c1/b1/tuya-sos-button/sos-1"


async def test_a_retained_alarm_is_a_stale_dead_letter_and_retained_availability_counts(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    async with Agent(config, PROFILES, DeviceRegistry(), [], clock) as agent:
        pipeline = agent.pipeline

        def handle(topic: str, payload: bytes, retained: bool) -> tuple[object, list[str]]:
            raw = RawMessage(topic=topic, payload=payload, received_at=clock.now())
            out = pipeline.handle(raw, retained)
            cause = out.dead_letter.cause if out.dead_letter is not None else None
            return (cause, [f"{e.kind.value} {e.alert.rule}" for e in out.events])

        press = b'{"action": "emergency"}'
        assert handle(SOS, press, retained=True) == ("stale_retained", [])
        assert pipeline.stale_retained == 1
        assert handle(SOS, press, retained=False) == (None, ["opened sos"])
        offline = b'{"state": "offline"}'
        assert handle(SOS + "/availability", offline, retained=True) == (
            None,
            ["opened device-offline"],
        )
