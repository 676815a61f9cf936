"""Profiles without a hand-written simulator: payloads generated from their field specs alone, as
the agent's own decoder and rule evaluator read them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from edge.decode import DeviceProfile, ProfileRegistry, decode, default_profile_dir
from edge.decode.decode import Decoded
from edge.model import RawMessage
from edge.rules.engine import evaluate_condition
from gateway.cli import main
from simulators.sensors import Event, SimulatedDevice
from tests.mqtt_recorder import Recorder
from tests.servers import MosquittoServer

PROFILES = ProfileRegistry.load(default_profile_dir())
NOW = 1_790_000_000.0

# A model nobody wrote Python for: scaled and offset numbers, an inverted boolean, numeric vendor
# codes, two fields reading one path, a nested envelope, device time in seconds, a sequence.
CO2_METER = """
name: acme-co2-meter
vendor: ACME
description: A CO2 and temperature meter, dropped in with no simulator of its own.
category: air
topics: ["ce/{community}/{building}/acme-co2-meter/{device_id}"]
heartbeat_seconds: 300
timestamp: {path: meta.time, format: epoch_s}
sequence: {path: meta.count}
fields:
  - {name: co2, path: m.co2, type: int, unit: ppm, minimum: 300, maximum: 5000}
  - {name: temperature, path: m.t, type: float, unit: degC, scale: 0.1, offset: -40, minimum: -20, maximum: 60}
  - {name: window_open, path: contact, type: bool, invert: true}
  - name: state
    path: st
    type: enum
    map: {"0": ok, "1": ok, "7": sensor_fault, "9": calibrating}
    default: unknown
  - {name: state_code, path: st, type: int, minimum: 0}
  - {name: battery, path: bat, type: int, unit: percent, minimum: 0, maximum: 100}
  - {name: label, path: label, type: str}
rules:
  - {id: co2-high, summary: CO2 high, severity: warning, when: {field: co2, gt: 1500}}
  - id: cold-window
    summary: Window open in the cold
    severity: minor
    when: {all: [{field: window_open, eq: true}, {field: temperature, lt: 5}]}
  - id: fault
    summary: Sensor fault
    severity: minor
    when: {any: [{field: state, eq: sensor_fault}, {field: state, eq: unknown}]}
  - {id: low-battery, summary: Battery low, severity: minor, when: {field: battery, lt: 15}}
"""


def _decode(message_topic: str, payload: bytes, profiles: ProfileRegistry) -> Decoded:
    received = datetime.fromtimestamp(NOW, UTC)
    return decode(RawMessage(topic=message_topic, payload=payload, received_at=received), profiles)


def _raised(profile: DeviceProfile, decoded: Decoded) -> set[str]:
    return {
        r.id
        for r in profile.rules
        if r.when is not None and evaluate_condition(r.when, decoded.fields) is True
    }


@pytest.fixture
def co2_dir(tmp_path: Path) -> Path:
    (tmp_path / "acme-co2-meter.yaml").write_text(CO2_METER, encoding="utf-8")
    return tmp_path


# binary profiles have hand-written bodies only: a frame layout says nothing of realistic values
JSON_PROFILES = [p.name for p in PROFILES if p.format == "json"]


@pytest.mark.parametrize("name", JSON_PROFILES)
def test_every_shipped_json_profile_can_be_simulated_from_its_field_specs(name: str) -> None:
    # a copy under another name has no hand-written body; its topic still routes to the original
    profile = PROFILES.get(name).model_copy(update={"name": f"generic-{name}"})
    events = SimulatedDevice("dev-0", "c1", "b01", profile).events
    assert Event.REPORT in events
    for event in sorted(events):
        # a fresh device each time: after LOW_BATTERY the battery stays low
        device = SimulatedDevice("dev-1", "c1", "b01", profile, clock=lambda: NOW)
        for _ in range(30):
            message = device.message(event)
            decoded = _decode(message.topic, message.payload, PROFILES)  # raises if refused
            assert decoded.time_source == "device"
            raised = _raised(decoded.profile, decoded)
            if event is Event.REPORT:
                assert raised == set(), message.payload
            if event is Event.ALARM:
                assert raised, message.payload


def test_a_profile_dropped_into_a_directory_is_simulated(co2_dir: Path) -> None:
    profiles = ProfileRegistry.load(co2_dir)
    profile = profiles.get("acme-co2-meter")
    device = SimulatedDevice("co2-1", "c1", "b01", profile, seed=4, clock=lambda: NOW)
    assert device.events == {Event.REPORT, Event.ALARM, Event.LOW_BATTERY}
    raised: set[str] = set()
    seqs: list[int | None] = []
    for _ in range(200):
        report = device.message(Event.REPORT)
        decoded = _decode(report.topic, report.payload, profiles)
        assert _raised(profile, decoded) == set()
        document = orjson.loads(report.payload)
        assert document["meta"]["time"] == int(NOW)  # epoch seconds, as the profile says
        assert isinstance(document["st"], int)  # numeric vendor codes go out as numbers
        assert isinstance(document["m"]["co2"], int)
        # the temperature is sent raw: (°C + 40) * 10
        assert decoded.fields["temperature"] == pytest.approx(document["m"]["t"] * 0.1 - 40)
        assert decoded.fields["window_open"] is not document["contact"]
        assert decoded.fields["state_code"] == document["st"]
        seqs.append(decoded.seq)
        alarm = device.message(Event.ALARM)
        raised |= _raised(profile, _decode(alarm.topic, alarm.payload, profiles))
        seqs.append(_decode(alarm.topic, alarm.payload, profiles).seq)
    # every rule is raised; the battery's only by the battery running low
    assert raised == {"co2-high", "cold-window", "fault"}
    assert seqs == list(range(1, 401))
    low = device.message(Event.LOW_BATTERY)
    assert "low-battery" in _raised(profile, _decode(low.topic, low.payload, profiles))


def test_simulate_takes_a_profile_from_profiles_dir(
    co2_dir: Path, mosquitto: MosquittoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    profiles = ProfileRegistry.load(co2_dir)
    args = ["--profiles-dir", str(co2_dir), "--profile", "acme-co2-meter", "--devices", "3"]
    args += ["--community", "generic-cli", "--messages", "60", "--rate", "500", "--json"]
    with Recorder(mosquitto.url, "ce/generic-cli/#") as recorder:
        code = main(["simulate", "--mqtt-url", mosquitto.url, *args])
        received = recorder.wait_for(60)
    assert code == 0
    summary = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["sent"] == summary["messages"] == len(received) == 60
    assert summary["by_model"] == {"acme-co2-meter": 60}
    assert len({topic for topic, _ in received}) == 3
    for topic, payload in received:
        assert _decode(topic, payload, profiles).profile.name == "acme-co2-meter"
