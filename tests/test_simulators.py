"""The device simulators: payloads against the shipped profiles, the community mix, pacing, and a
real mosquitto run (marker `broker`)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from edge.decode import DeviceProfile, FieldSpec, ProfileRegistry, decode, default_profile_dir
from edge.ingest import BrokerAddress
from edge.model import DeviceRef, FieldValue, RawMessage, Reading
from edge.rules import RuleEngine
from edge.rules.engine import evaluate_condition
from simulators.community import MIX, PREFIXES, build_community, model_counts
from simulators.load import LoadProgress, TokenBucket, broker_address, run_load, run_scenario
from simulators.scenarios import SCENARIOS, build_scenario
from simulators.sensors import (
    Event,
    SimulatedDevice,
    UnsupportedEvent,
    UnsupportedModel,
    simulated_models,
)
from tests.mqtt_recorder import Recorder
from tests.servers import free_port

PROFILES = ProfileRegistry.load(default_profile_dir())
ENGINE = RuleEngine(PROFILES)
NOW = 1_790_000_000.0  # the simulated devices' clock in pure tests
SMOKE, RADAR, SOS, ACCESS, DOOR = (
    "zigbee-ias-smoke",
    "tuya-fall-radar",
    "tuya-sos-button",
    "hikvision-access-controller",
    "zigbee-door-contact",
)
TUYA_SMOKE, HEIMAN, WEARABLE, KEYPAD, LOCK, PIR, PRESENCE, WATER, IAS_SOS = (
    "tuya-smoke-detector",
    "heiman-fall-sensor",
    "fall-wearable",
    "zigbee-alarm-keypad",
    "zigbee-lock",
    "zigbee-pir-motion",
    "tuya-presence-radar",
    "water-flow-meter",
    "ias-sos-button",
)
LORA_SMOKE, NB_WATER = "lorawan-smoke-detector", "nbiot-water-meter"
_MISSING = object()
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "float": (int, float),
    "enum": (str, int),
    "str": (str,),
}


def _device(model: str, device_id: str = "dev-0001", seed: int = 0) -> SimulatedDevice:
    return SimulatedDevice(
        device_id, "c1", "b01", PROFILES.get(model), seed=seed, clock=lambda: NOW
    )


def _walk(document: Any, path: str) -> Any:
    """The value at a dotted JSON path (a number indexes a list), or _MISSING."""
    for part in path.split("."):
        if isinstance(document, list) and part.isdecimal() and int(part) < len(document):
            document = document[int(part)]
        elif isinstance(document, dict) and part in document:
            document = document[part]
        else:
            return _MISSING
    return document


CASES = [(model, event) for model in simulated_models() for event in sorted(_device(model).events)]

# What each event's payload must say, in the vendor's own JSON (path -> allowed values).
EXPECTED_JSON: dict[tuple[str, Event], dict[str, tuple[Any, ...]]] = {
    (SMOKE, Event.REPORT): {"smoke": (False,), "test": (False,), "supervision_reports": (True,)},
    (SMOKE, Event.SMOKE): {"smoke": (True,), "test": (False,)},
    (SMOKE, Event.SMOKE_CLEARED): {"smoke": (False,), "test": (False,)},
    (SMOKE, Event.SELF_TEST): {"smoke": (True,), "test": (True,)},
    (SMOKE, Event.LOW_BATTERY): {"smoke": (False,), "battery_low": (True,)},
    (RADAR, Event.REPORT): {"fall_down_status": ("none",)},
    (RADAR, Event.MAYBE_FALL): {"fall_down_status": ("maybe_fall",), "presence": (True,)},
    (RADAR, Event.FALL): {"fall_down_status": ("fall",), "presence": (True,)},
    (SOS, Event.REPORT): {"action": (None,)},
    (SOS, Event.SOS): {"action": ("emergency",)},
    (SOS, Event.LOW_BATTERY): {"action": (None,)},
    (ACCESS, Event.REPORT): {"eventType": ("heartBeat",)},
    (ACCESS, Event.ACCESS_GRANTED): {
        "eventType": ("AccessControllerEvent",),
        "AccessControllerEvent.majorEventType": (5,),
        "AccessControllerEvent.subEventType": (1, 75),
    },
    (ACCESS, Event.ACCESS_DENIED): {"AccessControllerEvent.subEventType": (6, 8, 9, 76)},
    # Zigbee2MQTT: `contact` is true while the door is closed; a fresh device's door is closed
    (DOOR, Event.REPORT): {"contact": (True,), "battery_low": (False,)},
    (DOOR, Event.DOOR_OPENED): {"contact": (False,), "battery_low": (False,)},
    (DOOR, Event.DOOR_CLOSED): {"contact": (True,), "battery_low": (False,)},
    (DOOR, Event.LOW_BATTERY): {"battery_low": (True,)},
    (ACCESS, Event.DOOR_FORCED): {"AccessControllerEvent.subEventType": (27,)},
    (ACCESS, Event.DOOR_HELD_OPEN): {"AccessControllerEvent.subEventType": (28,)},
    # "dev-0001" is of the battery-percentage family (see test_tuya_smoke_families...)
    (TUYA_SMOKE, Event.REPORT): {"smoke": (False,), "test": (False,), "device_fault": (False,)},
    (TUYA_SMOKE, Event.SMOKE): {"smoke": (True,), "test": (False,), "silence": (False,)},
    (TUYA_SMOKE, Event.SMOKE_CLEARED): {"smoke": (False,), "silence": (False,)},
    (TUYA_SMOKE, Event.SELF_TEST): {"smoke": (True,), "test": (True,)},
    (TUYA_SMOKE, Event.SILENCED): {"smoke": (True,), "silence": (True,), "test": (False,)},
    (TUYA_SMOKE, Event.FAULT): {"smoke": (False,), "device_fault": (True,)},
    (TUYA_SMOKE, Event.LOW_BATTERY): {"smoke": (False,), "device_fault": (False,)},
    (HEIMAN, Event.REPORT): {"fall_status": ("normal",)},
    (HEIMAN, Event.MAYBE_FALL): {"fall_status": ("fall_warning",), "occupancy": (True,)},
    (HEIMAN, Event.FALL): {"fall_status": ("fall_alarm",), "occupancy": (True,)},
    (WEARABLE, Event.REPORT): {"fall_detected": (False,), "sos": (False,)},
    (WEARABLE, Event.FALL): {"fall_detected": (True,), "sos": (False,), "charging": (False,)},
    (WEARABLE, Event.SOS): {"fall_detected": (False,), "sos": (True,), "charging": (False,)},
    (WEARABLE, Event.LOW_BATTERY): {"fall_detected": (False,), "sos": (False,)},
    (KEYPAD, Event.REPORT): {"action": (_MISSING,), "sos_alarm": (False,)},
    (KEYPAD, Event.ARMED): {"action": ("arm_away", "arm_home"), "sos_alarm": (False,)},
    (KEYPAD, Event.DISARMED): {"action": ("disarm",), "sos_alarm": (False,)},
    (KEYPAD, Event.SOS): {"action": ("emergency", "sos", "panic"), "sos_alarm": (True,)},
    (KEYPAD, Event.TAMPER): {"action": (_MISSING,), "tamper": (True,)},
    (KEYPAD, Event.LOW_BATTERY): {"action": (_MISSING,), "battery_low": (True,)},
    (LOCK, Event.REPORT): {"action": (_MISSING,), "door_state": ("closed",)},
    (LOCK, Event.ACCESS_GRANTED): {
        "action": ("unlock",),
        "action_source_name": ("keypad", "rfid", "rf"),
        "lock_state": ("unlocked",),
    },
    (LOCK, Event.ACCESS_DENIED): {
        "action": ("unlock_failure_invalid_pin_or_id",),
        "lock_state": ("locked",),
    },
    (LOCK, Event.DOOR_OPENED): {"action": (_MISSING,), "door_state": ("open",)},
    (LOCK, Event.DOOR_CLOSED): {"action": (_MISSING,), "door_state": ("closed",)},
    (LOCK, Event.LOCKED): {
        "action": ("lock", "auto_lock", "manual_lock", "key_lock"),
        "lock_state": ("locked",),
    },
    (LOCK, Event.DOOR_FORCED): {"door_state": ("error_forced_open",)},
    (LOCK, Event.LOCK_JAMMED): {"door_state": ("error_jammed",)},
    (LOCK, Event.LOW_BATTERY): {"door_state": ("closed",)},
    (PIR, Event.REPORT): {"occupancy": (False,), "tamper": (False,)},
    (PIR, Event.OCCUPIED): {"occupancy": (True,), "tamper": (False,)},
    (PIR, Event.VACANT): {"occupancy": (False,), "tamper": (False,)},
    (PIR, Event.TAMPER): {"tamper": (True,)},
    (PIR, Event.LOW_BATTERY): {"battery_low": (True,)},
    (PRESENCE, Event.REPORT): {"presence": (True, False)},
    (PRESENCE, Event.OCCUPIED): {"presence": (True,), "no_occupancy_since": (_MISSING,)},
    (PRESENCE, Event.VACANT): {"presence": (False,), "motion_speed": (0.0,)},
    (WATER, Event.REPORT): {"flow": (0.0,), "leak": (False,)},
    (WATER, Event.WATER_FLOW): {"leak": (False,)},
    (WATER, Event.LEAK): {"leak": (True,)},
    (WATER, Event.LOW_BATTERY): {"flow": (0.0,), "leak": (False,)},
    (IAS_SOS, Event.REPORT): {"sos": (False,), "tamper": (False,), "battery_low": (False,)},
    (IAS_SOS, Event.SOS): {"sos": (True,)},
    (IAS_SOS, Event.TAMPER): {"sos": (False,), "tamper": (True,)},
    (IAS_SOS, Event.LOW_BATTERY): {"sos": (False,), "battery_low": (True,)},
    # binary models: the envelope here, the frame's fields in EXPECTED_FRAME
    **{(LORA_SMOKE, event): {"fPort": (2,)} for event in _device(LORA_SMOKE).events},
    **{(NB_WATER, event): {"rsrp": tuple(range(-120, -80))} for event in _device(NB_WATER).events},
}

# The rule each event must raise once decoded (None: no alert rule of the profile fires).
EXPECTED_RULE: dict[tuple[str, Event], str | None] = {
    (SMOKE, Event.REPORT): None,
    (SMOKE, Event.SMOKE): "smoke",
    (SMOKE, Event.SMOKE_CLEARED): None,
    (SMOKE, Event.SELF_TEST): None,  # a self-test is never a fire
    (SMOKE, Event.LOW_BATTERY): "low-battery",
    (RADAR, Event.REPORT): None,
    (RADAR, Event.MAYBE_FALL): "possible-fall",
    (RADAR, Event.FALL): "fall",
    (SOS, Event.REPORT): None,
    (SOS, Event.SOS): "sos",
    (SOS, Event.LOW_BATTERY): "low-battery",
    (ACCESS, Event.REPORT): None,
    (ACCESS, Event.ACCESS_GRANTED): None,
    (ACCESS, Event.ACCESS_DENIED): None,
    (ACCESS, Event.DOOR_FORCED): "door-forced",
    (ACCESS, Event.DOOR_HELD_OPEN): "door-held-open",
    (DOOR, Event.REPORT): None,
    (DOOR, Event.DOOR_OPENED): None,
    (DOOR, Event.DOOR_CLOSED): None,
    (DOOR, Event.LOW_BATTERY): "low-battery",
    (TUYA_SMOKE, Event.REPORT): None,
    (TUYA_SMOKE, Event.SMOKE): "smoke",
    (TUYA_SMOKE, Event.SMOKE_CLEARED): None,
    (TUYA_SMOKE, Event.SELF_TEST): None,  # a self-test is never a fire
    (TUYA_SMOKE, Event.SILENCED): "smoke",  # a silenced siren is still smoke
    (TUYA_SMOKE, Event.FAULT): "fault",
    (TUYA_SMOKE, Event.LOW_BATTERY): "low-battery",
    (HEIMAN, Event.REPORT): None,
    (HEIMAN, Event.MAYBE_FALL): "possible-fall",
    (HEIMAN, Event.FALL): "fall",
    (WEARABLE, Event.REPORT): None,
    (WEARABLE, Event.FALL): "fall",
    (WEARABLE, Event.SOS): "sos",
    (WEARABLE, Event.LOW_BATTERY): "low-battery",
    (KEYPAD, Event.REPORT): None,
    (KEYPAD, Event.ARMED): None,
    (KEYPAD, Event.DISARMED): None,
    (KEYPAD, Event.SOS): "sos",
    (KEYPAD, Event.TAMPER): "keypad-tamper",
    (KEYPAD, Event.LOW_BATTERY): "low-battery",
    (LOCK, Event.REPORT): None,
    (LOCK, Event.ACCESS_GRANTED): None,
    (LOCK, Event.ACCESS_DENIED): None,
    (LOCK, Event.DOOR_OPENED): None,
    (LOCK, Event.DOOR_CLOSED): None,
    (LOCK, Event.LOCKED): None,
    (LOCK, Event.DOOR_FORCED): "door-forced",
    (LOCK, Event.LOCK_JAMMED): "lock-jammed",
    (LOCK, Event.LOW_BATTERY): "low-battery",
    (PIR, Event.REPORT): None,
    (PIR, Event.OCCUPIED): None,
    (PIR, Event.VACANT): None,
    (PIR, Event.TAMPER): "motion-tamper",
    (PIR, Event.LOW_BATTERY): "low-battery",
    (PRESENCE, Event.REPORT): None,
    (PRESENCE, Event.OCCUPIED): None,
    (PRESENCE, Event.VACANT): None,
    (WATER, Event.REPORT): None,
    (WATER, Event.WATER_FLOW): None,
    (WATER, Event.LEAK): "leak",
    (WATER, Event.LOW_BATTERY): "low-battery",
    (IAS_SOS, Event.REPORT): None,
    (IAS_SOS, Event.SOS): "sos",
    (IAS_SOS, Event.TAMPER): "sos-tamper",
    (IAS_SOS, Event.LOW_BATTERY): "low-battery",
    (LORA_SMOKE, Event.REPORT): None,
    (LORA_SMOKE, Event.SMOKE): "smoke",
    (LORA_SMOKE, Event.SMOKE_CLEARED): None,
    (LORA_SMOKE, Event.SELF_TEST): None,  # a self-test is never a fire
    (LORA_SMOKE, Event.SILENCED): "smoke",  # a silenced siren is still smoke
    (LORA_SMOKE, Event.FAULT): "fault",
    (LORA_SMOKE, Event.TAMPER): "smoke-tamper",
    (LORA_SMOKE, Event.LOW_BATTERY): "low-battery",
    (NB_WATER, Event.REPORT): None,
    (NB_WATER, Event.WATER_FLOW): None,
    (NB_WATER, Event.LEAK): "leak",
    (NB_WATER, Event.BURST): "burst",
    (NB_WATER, Event.TAMPER): "meter-tamper",  # the meter still counts
    (NB_WATER, Event.LOW_BATTERY): "low-battery",
}

# What the binary models' frames say once decoded (field -> value), beyond the rule they raise.
EXPECTED_FRAME: dict[tuple[str, Event], dict[str, FieldValue]] = {
    (LORA_SMOKE, Event.REPORT): {"smoke": False, "test": False, "battery_low": False},
    (LORA_SMOKE, Event.SELF_TEST): {"smoke": True, "test": True, "silence": False},
    (LORA_SMOKE, Event.SILENCED): {"smoke": True, "test": False, "silence": True},
    (LORA_SMOKE, Event.TAMPER): {"smoke": False, "tamper": True},
    (NB_WATER, Event.REPORT): {"leak": False, "burst": False, "tamper": False},
    (NB_WATER, Event.LEAK): {"leak": True, "burst": False},
    (NB_WATER, Event.BURST): {"leak": False, "burst": True},
    (NB_WATER, Event.TAMPER): {"leak": False, "tamper": True},
}


def _check_field(spec: FieldSpec, value: Any) -> None:
    assert isinstance(value, _JSON_TYPES[spec.type]), f"{spec.path} = {value!r}"
    if spec.type != "bool":
        assert not isinstance(value, bool), f"{spec.path} = {value!r} is a boolean"
    if spec.type in ("int", "float"):
        assert isinstance(value, int | float)
        number = value * spec.scale + spec.offset
        assert spec.minimum is None or number >= spec.minimum, f"{spec.path} = {value}"
        assert spec.maximum is None or number <= spec.maximum, f"{spec.path} = {value}"
    if spec.type == "enum":
        assert spec.map is not None
        assert str(value) in spec.map or spec.default is not None, f"{spec.path} = {value!r}"


def _raised(profile: DeviceProfile, fields: dict[str, FieldValue]) -> set[str]:
    """Rules that one message raises at once: unheld conditions and confirmations (not counts,
    holds or suspicions, which time decides)."""
    raised = set()
    for rule in profile.rules:
        if rule.kind == "condition" and rule.for_seconds is None:
            immediate = rule.when
        elif rule.kind == "confirm":
            immediate = rule.confirm
        else:
            continue
        if immediate is not None and evaluate_condition(immediate, fields):
            raised.add(rule.id)
    return raised


def test_every_profile_shipped_has_a_simulator() -> None:
    assert sorted(PROFILES.names()) == simulated_models()
    assert set(EXPECTED_JSON) == set(CASES) == set(EXPECTED_RULE)


@pytest.mark.parametrize(("model", "event"), CASES)
def test_payload_has_the_profile_fields_with_json_types(model: str, event: Event) -> None:
    device = _device(model)
    profile = device.profile
    for _ in range(5):  # random parts (codes, presence) vary from one payload to the next
        message = device.message(event)
        assert message.event is event
        assert message.model == model
        document = orjson.loads(message.payload)
        assert isinstance(document, dict)
        carried = 0
        for spec in profile.fields:
            if spec.path is None:
                continue  # a frame field: see test_binary_frames_decode_to_the_event
            value = _walk(document, spec.path)
            if spec.required:
                assert value is not _MISSING, f"required {spec.path} missing"
                assert value is not None, f"required {spec.path} is null"
            if value is _MISSING or (value is None and spec.nullable):
                continue
            carried += 1
            _check_field(spec, value)
        assert carried, "the payload carries none of the profile's fields"
        for path, allowed in EXPECTED_JSON[model, event].items():
            assert _walk(document, path) in allowed, f"{event}: {path} = {_walk(document, path)!r}"


@pytest.mark.parametrize("model", simulated_models())
def test_routine_payloads_carry_device_time_and_increasing_sequence(model: str) -> None:
    device = _device(model)
    profile = device.profile
    assert profile.timestamp is not None
    assert profile.sequence is not None
    seqs: list[int] = []
    for _ in range(50):
        document = orjson.loads(device.message().payload)
        stamp = _walk(document, profile.timestamp.path)
        if profile.timestamp.format == "iso8601":
            moment = datetime.fromisoformat(stamp)
            assert moment.tzinfo is not None
            assert moment.timestamp() == NOW
        else:
            assert stamp == int(NOW * 1000)  # epoch milliseconds
        seq = _walk(document, profile.sequence.path)
        if model == ACCESS and document["eventType"] == "heartBeat":
            assert seq is _MISSING  # a Hikvision heartbeat has no AccessControllerEvent envelope
            continue
        seqs.append(seq)
    assert seqs == list(range(1, len(seqs) + 1))


def test_hikvision_timestamp_is_iso8601_with_timezone() -> None:
    document = _device(ACCESS).document(Event.DOOR_FORCED)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", document["dateTime"])
    assert document["AccessControllerEvent"]["serialNo"] == 1


@pytest.mark.parametrize(("model", "event"), CASES)
def test_payload_decodes_with_the_real_decoder_and_raises_its_rule(
    model: str, event: Event
) -> None:
    device = _device(model)
    received = datetime.fromtimestamp(NOW, UTC)
    message = device.message(event)
    decoded = decode(
        RawMessage(topic=message.topic, payload=message.payload, received_at=received), PROFILES
    )
    assert decoded.profile.name == model
    assert decoded.device_id == device.device_id
    assert decoded.time_source == "device"
    # Hikvision stamps whole seconds: the decoder puts the serial number (mod 1000) in the ms
    tie_break = (
        timedelta(milliseconds=(decoded.seq or 0) % 1000) if model == ACCESS else timedelta()
    )
    assert decoded.at == received + tie_break
    if not (model == ACCESS and event is Event.REPORT):
        assert decoded.seq == 1
    expected = EXPECTED_RULE[model, event]
    assert _raised(decoded.profile, decoded.fields) == ({expected} if expected else set())


def test_payload_fields_decode_to_the_canonical_values() -> None:
    received = datetime.fromtimestamp(NOW, UTC)

    def fields(model: str, event: Event) -> dict[str, FieldValue]:
        message = _device(model).message(event)
        raw = RawMessage(topic=message.topic, payload=message.payload, received_at=received)
        return decode(raw, PROFILES).fields

    assert fields(SMOKE, Event.SELF_TEST) | {"smoke": True, "test": True} == fields(
        SMOKE, Event.SELF_TEST
    )
    assert fields(RADAR, Event.FALL)["fall_state"] == "fall"
    assert "action" not in fields(SOS, Event.REPORT)  # "action": null is "not reported"
    assert fields(SOS, Event.SOS)["action"] == "emergency"
    assert fields(ACCESS, Event.DOOR_FORCED)["event"] == "door_forced"
    assert fields(ACCESS, Event.ACCESS_GRANTED)["event"] == "granted"
    assert fields(ACCESS, Event.ACCESS_DENIED)["event"] == "denied"
    assert fields(ACCESS, Event.REPORT)["event_type"] == "heartbeat"
    assert fields(DOOR, Event.DOOR_OPENED)["open"] is True  # contact false: the door is open
    assert fields(DOOR, Event.DOOR_CLOSED)["open"] is False
    assert fields(DOOR, Event.REPORT)["open"] is False


@pytest.mark.parametrize(("model", "event"), sorted(EXPECTED_FRAME))
def test_binary_frames_decode_to_the_event(model: str, event: Event) -> None:
    device = _device(model)
    received = datetime.fromtimestamp(NOW, UTC)
    for _ in range(5):
        message = device.message(event)
        raw = RawMessage(topic=message.topic, payload=message.payload, received_at=received)
        fields = decode(raw, PROFILES).fields
        assert fields | EXPECTED_FRAME[model, event] == fields


def test_water_meter_register_only_counts_up() -> None:
    device = _device(NB_WATER)
    received = datetime.fromtimestamp(NOW, UTC)
    seen: list[FieldValue] = []
    for _ in range(30):
        message = device.message()
        raw = RawMessage(topic=message.topic, payload=message.payload, received_at=received)
        seen.append(decode(raw, PROFILES).fields["water_consumed"])
    assert seen == sorted(seen)
    assert seen[0] != seen[-1]  # routine traffic draws water now and then


def test_door_contact_routine_reports_alternate_open_and_closed() -> None:
    device = _device(DOOR)
    received = datetime.fromtimestamp(NOW, UTC)
    events: list[Event] = []
    states: list[bool] = []
    for _ in range(400):
        message = device.message()
        events.append(message.event)
        raw = RawMessage(topic=message.topic, payload=message.payload, received_at=received)
        states.append(bool(decode(raw, PROFILES).fields["open"]))
    assert set(events) == {Event.DOOR_OPENED, Event.DOOR_CLOSED, Event.REPORT}
    changes = [(e, s) for e, s in zip(events, states, strict=True) if e is not Event.REPORT]
    # every opening is followed by a closing: a door never opens twice in a row
    assert [s for _, s in changes] == [index % 2 == 0 for index in range(len(changes))]
    assert all(not s for e, s in zip(events, states, strict=True) if e is Event.REPORT)
    assert 0.05 <= events.count(Event.REPORT) / len(events) <= 0.25  # check-ins, now and then


def _send(device: SimulatedDevice, event: Event = Event.ROUTINE) -> tuple[Event, dict[str, Any]]:
    """Publish one simulated message through the decoder; the event sent and its fields."""
    message = device.message(event)
    received = datetime.fromtimestamp(NOW, UTC)
    raw = RawMessage(topic=message.topic, payload=message.payload, received_at=received)
    return message.event, dict(decode(raw, PROFILES).fields)


def _verdicts(device: SimulatedDevice, event: Event) -> set[tuple[str, str]]:
    """What the real rule engine decides about the device's next `event` message."""
    _, fields = _send(device, event)
    ref = DeviceRef(
        device_id=device.device_id,
        model=device.profile.name,
        category=device.profile.category,
        community=device.community,
        building=device.building,
    )
    at = datetime.fromtimestamp(NOW, UTC)
    reading = Reading(device=ref, fields=fields, at=at, received_at=at)
    return {(v.rule.id, v.action) for v in ENGINE.evaluate(reading)}


def test_tuya_smoke_families_report_battery_as_percent_or_state() -> None:
    devices = [_device(TUYA_SMOKE, f"tsm-{n:04d}") for n in range(30)]
    by_state = [d for d in devices if "battery_state" in d.document(Event.REPORT)]
    by_percent = [d for d in devices if "battery" in d.document(Event.REPORT)]
    assert by_state
    assert by_percent
    assert len(by_state) + len(by_percent) == len(devices)  # one family each, never both
    state = by_state[0]
    _, fields = _send(state, Event.REPORT)
    assert fields["battery_state"] in ("middle", "high")
    assert "battery" not in fields
    assert "device_fault" not in fields
    assert ("fault", "raise") in _verdicts(state, Event.FAULT)
    assert ("fault", "clear") in _verdicts(state, Event.REPORT)  # fault_alarm false again
    assert ("low-battery", "raise") in _verdicts(state, Event.LOW_BATTERY)
    assert _send(state, Event.REPORT)[1]["battery_state"] == "low"  # nobody changed it


def test_a_silenced_siren_is_still_smoke() -> None:
    device = _device(TUYA_SMOKE)
    assert ("smoke", "raise") in _verdicts(device, Event.SMOKE)
    silenced = _verdicts(device, Event.SILENCED)
    assert ("smoke", "raise") in silenced
    assert ("smoke", "clear") not in silenced
    assert ("smoke", "clear") in _verdicts(device, Event.SMOKE_CLEARED)
    assert ("smoke", "raise") not in _verdicts(device, Event.SELF_TEST)


@pytest.mark.parametrize("model", [RADAR, HEIMAN])
def test_a_possible_fall_is_withdrawn_or_superseded_and_a_fall_never_clears(model: str) -> None:
    device = _device(model)
    assert _verdicts(device, Event.MAYBE_FALL) == {("possible-fall", "raise")}
    assert _verdicts(device, Event.REPORT) == {("possible-fall", "clear")}  # withdrawn
    assert _verdicts(device, Event.MAYBE_FALL) == {("possible-fall", "raise")}
    # superseded: the alert book closes the possible fall when the fall raises
    assert _verdicts(device, Event.FALL) == {("fall", "raise")}
    assert ("fall", "clear") not in _verdicts(device, Event.REPORT)


@pytest.mark.parametrize(
    ("model", "rule"),
    [(WEARABLE, "sos"), (WEARABLE, "fall"), (IAS_SOS, "sos"), (KEYPAD, "sos")],
)
def test_sos_and_fall_alerts_have_no_automatic_clear(model: str, rule: str) -> None:
    device = _device(model)
    assert (rule, "raise") in _verdicts(device, Event.FALL if rule == "fall" else Event.SOS)
    for _ in range(20):
        assert all(r != rule for r, _ in _verdicts(device, Event.ROUTINE))


def test_keypad_sos_latch_is_recorded_but_raises_only_on_the_press() -> None:
    device = _device(KEYPAD)
    assert ("sos", "raise") in _verdicts(device, Event.SOS)
    _, fields = _send(device, Event.REPORT)
    assert fields["sos_alarm"] is True  # latched until disarmed...
    assert "action" not in fields  # ...but a later report is not another press
    assert {action for _, action in _verdicts(device, Event.REPORT)} == {"clear"}  # no raise
    _, fields = _send(device, Event.DISARMED)
    assert fields == fields | {"action": "disarm", "sos_alarm": False}
    assert "action_code" not in fields  # the PIN typed is not kept


def test_lock_routine_cycles_and_never_keeps_who_unlocked() -> None:
    device = _device(LOCK)
    sent = [_send(device) for _ in range(300)]
    assert {event for event, _ in sent} == {
        Event.ACCESS_GRANTED,
        Event.ACCESS_DENIED,
        Event.DOOR_OPENED,
        Event.DOOR_CLOSED,
        Event.LOCKED,
        Event.REPORT,
    }
    cycle = [e for e, _ in sent if e not in (Event.ACCESS_DENIED, Event.REPORT)]
    order = (Event.ACCESS_GRANTED, Event.DOOR_OPENED, Event.DOOR_CLOSED, Event.LOCKED)
    assert cycle == [order[i % 4] for i in range(len(cycle))]
    assert all("action_user" not in fields and "user" not in fields for _, fields in sent)
    assert all(f["door_state"] in ("open", "closed") for _, f in sent)
    assert ("door-forced", "raise") in _verdicts(device, Event.DOOR_FORCED)
    assert ("door-forced", "clear") not in _verdicts(device, Event.DOOR_CLOSED)
    assert ("lock-jammed", "raise") in _verdicts(device, Event.LOCK_JAMMED)
    assert ("lock-jammed", "clear") in _verdicts(device, Event.REPORT)


def test_motion_and_water_routines_give_signs_of_life() -> None:
    pir = _device(PIR)
    motion = [_send(pir)[1]["motion"] for _ in range(200)]
    assert 0.3 <= sum(motion) / len(motion) <= 0.7  # motion, then its end
    meter = _device(WATER)
    readings = [_send(meter)[1] for _ in range(200)]
    totals = [r["water_consumed"] for r in readings]
    assert totals == sorted(totals)  # a register only counts up
    assert totals[-1] > totals[0]
    flowing = [r["flow"] > 0 for r in readings]
    assert 0.15 <= sum(flowing) / len(flowing) <= 0.45
    assert not any(r["leak"] for r in readings)
    assert ("leak", "raise") in _verdicts(meter, Event.LEAK)
    assert ("leak", "clear") in _verdicts(meter, Event.REPORT)


@pytest.mark.parametrize("model", simulated_models())
def test_topic_matches_the_profile_pattern(model: str) -> None:
    device = SimulatedDevice("smk-b03-0012", "estate-7", "b03", PROFILES.get(model))
    profile, values = PROFILES.match(device.topic)
    assert profile.name == model
    assert values == {"community": "estate-7", "building": "b03", "device_id": "smk-b03-0012"}


def test_battery_drains_slowly_and_low_battery_stays_low() -> None:
    device = _device(SOS)
    batteries = [orjson.loads(device.message(Event.REPORT).payload)["battery"] for _ in range(500)]
    assert batteries == sorted(batteries, reverse=True)
    assert batteries[0] - batteries[-1] <= 5
    assert orjson.loads(device.message(Event.LOW_BATTERY).payload)["battery"] < 20
    assert orjson.loads(device.message(Event.REPORT).payload)["battery"] < 20


def test_binary_model_without_a_body_and_unsupported_event_fail_clearly() -> None:
    # a JSON model without a hand-written body is simulated from its field specs
    # (tests/test_generic_simulator.py); a binary one cannot be
    alien = PROFILES.get(SMOKE).model_copy(update={"name": "acme-gas-meter", "format": "binary"})
    with pytest.raises(UnsupportedModel, match="binary profile 'acme-gas-meter'"):
        SimulatedDevice("gas-1", "c1", "b01", alien)
    with pytest.raises(UnsupportedEvent, match="tuya-fall-radar cannot report 'sos'"):
        _device(RADAR).message(Event.SOS)


# --- community -------------------------------------------------------------------------------


def test_door_contacts_are_simulated_on_request_only() -> None:
    assert DOOR not in {share.model for share in MIX}  # the mixed community is unchanged
    doors = build_community(100, "estate-7", seed=3, model=DOOR)
    assert {d.profile.name for d in doors} == {DOOR}
    assert len({d.device_id for d in doors}) == 100
    assert all(re.fullmatch(r"dor-b0[1-3]-\d{4}", d.device_id) for d in doors)
    assert set(PREFIXES) == set(simulated_models())
    with pytest.raises(ValueError, match=r"unknown device profile 'acme-gas-meter' \(simulated: "):
        build_community(10, model="acme-gas-meter")


def test_model_counts_follow_the_mix_with_one_of_each() -> None:
    assert model_counts(100) == {ACCESS: 35, SMOKE: 30, RADAR: 20, SOS: 15}
    for devices in range(60):
        counts = model_counts(devices)
        assert sum(counts.values()) == devices
        if devices >= len(MIX):
            assert min(counts.values()) >= 1, counts


def test_community_ids_buildings_and_mix() -> None:
    devices = build_community(200, "estate-7", seed=3)
    ids = [d.device_id for d in devices]
    assert len(set(ids)) == 200
    prefixes = {ACCESS: "acc", SMOKE: "smk", RADAR: "rad", SOS: "sos"}
    for device in devices:
        match = re.fullmatch(r"(acc|smk|rad|sos)-(b\d\d)-\d{4}", device.device_id)
        assert match, device.device_id
        assert match.group(1) == prefixes[device.profile.name]
        assert match.group(2) == device.building
        assert device.community == "estate-7"
        assert PROFILES.match(device.topic)[0].name == device.profile.name
    assert {d.building for d in devices} == {f"b{n:02d}" for n in range(1, 6)}
    models = [d.profile.name for d in devices]
    assert {m: models.count(m) for m in set(models)} == model_counts(200)
    assert {d.building for d in build_community(10, buildings=3)} == {"b01", "b02", "b03"}
    assert len({d.profile.name for d in build_community(4)}) == 4


def test_community_is_reproducible_with_a_seed() -> None:
    def run(seed: int) -> list[tuple[str, bytes]]:
        devices = build_community(30, seed=seed)
        return [(d.device_id, d.message(at=NOW).payload) for d in devices for _ in range(3)]

    assert run(1) == run(1)
    assert run(1) != run(2)


# --- scenarios -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_raises_its_alert_only_at_the_end(name: str) -> None:
    scenario = SCENARIOS[name]
    steps = build_scenario(name, build_community(20, "c1"), start=NOW)
    assert [s.event for s in steps] == [event for _, event in scenario.steps]
    assert {s.device.profile.name for s in steps} == {scenario.model}
    raised: list[set[str]] = []
    due = NOW
    for step in steps:
        due += step.delay
        raw = RawMessage(
            topic=step.topic, payload=step.payload, received_at=datetime.fromtimestamp(due, UTC)
        )
        decoded = decode(raw, PROFILES)
        assert decoded.time_source == "device"
        raised.append(_raised(decoded.profile, decoded.fields))
    assert raised[0] == set()
    assert scenario.rule in raised[-1]
    assert all(scenario.rule not in r for r in raised[:-1])


def test_unknown_scenario_is_a_value_error() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown scenario 'flood' \(known: door-forced, elder-sos, fall, smoke-alarm\)",
    ):
        build_scenario("flood", build_community(4))


# --- pacing and URLs -------------------------------------------------------------------------


def test_token_bucket_paces_ticks_to_the_rate() -> None:
    bucket = TokenBucket(200.0, 20.0)
    assert bucket.take(100.0) == 0
    batches = [bucket.take(100.0 + tick * 0.01) for tick in range(1, 201)]
    assert 399 <= sum(batches) <= 400
    assert max(batches) <= 3


def test_token_bucket_batches_per_tick_at_high_rates() -> None:
    bucket = TokenBucket(50_000.0, 5_000.0)
    bucket.take(0.0)
    assert bucket.take(0.01) == pytest.approx(500, abs=1)


def test_token_bucket_caps_bursts_and_honours_the_limit() -> None:
    bucket = TokenBucket(100.0, 10.0)
    bucket.take(0.0)
    assert bucket.take(60.0) == 10  # a stall does not turn into a minute's worth of burst
    bucket.take(61.0, limit=3)
    assert bucket.take(61.0) == 7  # what the limit held back stays in the bucket
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0.0, 1.0)


def test_broker_urls_are_parsed_as_the_agent_parses_them() -> None:
    assert broker_address("mqtt://127.0.0.1:1884") == BrokerAddress("127.0.0.1", 1884)
    assert broker_address("mqtt://broker.local") == BrokerAddress("broker.local", 1883)
    assert broker_address("mqtt://[::1]:1883/") == BrokerAddress("::1", 1883)
    assert broker_address("mqtts://broker:8883").tls is not None
    assert broker_address("mqtt://user:pw@broker:1883").username == "user"
    for bad in (
        "http://broker:1883",
        "broker:1883",
        "mqtt://:1883",
        "mqtt://broker:1883/ce",
        "mqtt://broker:1883?x=1",
        "mqtt://broker:99999",
    ):
        with pytest.raises(ValueError, match="broker URL"):
            broker_address(bad)


def test_unreachable_broker_is_a_connection_error_naming_the_url() -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionError, match=re.escape(url)):
        run_load(url, devices=4, rate=10, duration=1)
    with pytest.raises(ConnectionError, match=re.escape(url)):
        run_scenario(url, "fall")


# --- against a real broker -------------------------------------------------------------------


# `_mosquitto_url`, not `mosquitto_url`: a shared conftest fixture will replace this one. ruff's
# PT019 reads the underscore as "no value"; the tests below use the value, hence the noqa.
@pytest.fixture(scope="module")
def _mosquitto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
        None,
    )
    if binary is None:
        pytest.fail("mosquitto not found: apt-get install mosquitto")
    directory = tmp_path_factory.mktemp("mosquitto")
    port = free_port()
    config = directory / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n", encoding="utf-8")
    log_path = directory / "mosquitto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_for_port(port, process, log_path)
            yield f"mqtt://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mosquitto exited: {log_path.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    pytest.fail(f"mosquitto did not listen on {port}: {log_path.read_text(errors='replace')}")


@pytest.mark.broker
def test_run_load_sends_what_the_broker_delivers(_mosquitto_url: str) -> None:  # noqa: PT019
    reports: list[LoadProgress] = []
    with Recorder(_mosquitto_url, "ce/load/#") as subscriber:
        result = run_load(
            _mosquitto_url,
            devices=20,
            rate=200,
            duration=2,
            community="load",
            progress=reports.append,
        )
        received = subscriber.wait_for(result.sent)
    assert result.failed == 0
    assert result.sent == len(received)
    assert 300 <= result.sent <= 400
    assert sum(result.by_model.values()) == result.sent
    assert set(result.by_model) == {share.model for share in MIX}
    assert result.rate == pytest.approx(result.sent / result.seconds)
    assert len({topic for topic, _ in received}) == 20  # every device published
    assert len(reports) >= 2
    assert reports[-1].sent == result.sent
    assert reports[-1].in_flight == 0
    for topic, payload in received[:50]:
        decode(RawMessage(topic=topic, payload=payload, received_at=datetime.now(UTC)), PROFILES)


@pytest.mark.broker
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_run_scenario_delivers_its_messages(_mosquitto_url: str, name: str) -> None:  # noqa: PT019
    scenario = SCENARIOS[name]
    community = f"sc-{name}"
    with Recorder(_mosquitto_url, f"ce/{community}/#") as subscriber:
        result = run_scenario(_mosquitto_url, name, community, delay_scale=0.05)
        received = subscriber.wait_for(len(scenario.steps))
    assert result.failed == 0
    assert result.sent == len(scenario.steps) == len(received)
    assert result.by_model == {scenario.model: len(scenario.steps)}
    last_topic, last_payload = received[-1]
    decoded = decode(
        RawMessage(topic=last_topic, payload=last_payload, received_at=datetime.now(UTC)), PROFILES
    )
    assert decoded.time_source == "device"
    assert scenario.rule in _raised(decoded.profile, decoded.fields)


@pytest.mark.broker
def test_run_load_of_one_profile_publishes_only_that_model(_mosquitto_url: str) -> None:  # noqa: PT019
    with Recorder(_mosquitto_url, "ce/doors/#") as subscriber:
        result = run_load(
            _mosquitto_url, devices=10, rate=200, duration=1, community="doors", profile=DOOR
        )
        received = subscriber.wait_for(result.sent)
    assert result.failed == 0
    assert result.by_model == {DOOR: result.sent}
    assert len(received) == result.sent >= 150
    assert {topic.split("/")[3] for topic, _ in received} == {DOOR}
    assert len({topic for topic, _ in received}) == 10
    for topic, payload in received:
        decoded = decode(
            RawMessage(topic=topic, payload=payload, received_at=datetime.now(UTC)), PROFILES
        )
        assert decoded.profile.name == DOOR
        assert decoded.time_source == "device"


@pytest.mark.broker
def test_simulate_command_takes_a_profile(
    _mosquitto_url: str,  # noqa: PT019
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gateway.cli import main

    args = ["--profile", DOOR, "--devices", "5", "--rate", "100", "--duration", "0.5"]
    code = main(
        ["simulate", "--mqtt-url", _mosquitto_url, *args, "--community", "cli-doors", "--json"]
    )
    assert code == 0
    summary = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["failed"] == 0
    assert summary["by_model"] == {DOOR: summary["sent"]}
    assert summary["sent"] >= 30


def test_simulate_command_refuses_an_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    # no broker needed: the profile is checked before connecting
    url = f"mqtt://127.0.0.1:{free_port()}"
    assert main(["simulate", "--mqtt-url", url, "--profile", "acme-gas-meter"]) == 2
    err = capsys.readouterr().err
    assert "community-edge simulate: unknown device profile 'acme-gas-meter'" in err
    assert DOOR in err  # names the known ones
    with pytest.raises(SystemExit) as exited:  # a profile flood and a scenario exclude each other
        main(["simulate", "--mqtt-url", url, "--profile", DOOR, "--scenario", "fall"])
    assert exited.value.code == 2
