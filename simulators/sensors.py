"""Simulated devices: MQTT topics and payloads in each vendor's real shape, driven by the profiles.

Adding a model is one body function and one `_MODELS` entry; `ts`/`seq` are stamped generically.
"""

from __future__ import annotations

import base64
import logging
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import orjson

from edge.decode import DeviceProfile
from simulators.generic import GenericPayloads

_log = logging.getLogger(__name__)

# Device clocks in the examples run on China Standard Time; ISO timestamps carry the offset.
_DEVICE_TZ = timezone(timedelta(hours=8))


class Event(StrEnum):
    """What a simulated device reports: routine traffic or one of the events that raise alerts."""

    # the model's ordinary traffic: a REPORT, access events for access controllers, openings and
    # closings for door contacts, the unlock-open-close-lock cycle of a lock, arming and disarming
    # for keypads, motion and its end for PIRs, water draws for meters
    ROUTINE = "routine"
    # periodic status: smoke idle report, radar presence, SOS battery, Hikvision heartBeat,
    # door contact / lock / keypad / PIR check-in (state unchanged), water meter with no flow
    REPORT = "report"
    SMOKE = "smoke"
    SMOKE_CLEARED = "smoke_cleared"
    SELF_TEST = "self_test"
    SOS = "sos"
    FALL = "fall"
    MAYBE_FALL = "maybe_fall"
    ACCESS_GRANTED = "access_granted"
    ACCESS_DENIED = "access_denied"
    DOOR_FORCED = "door_forced"
    DOOR_HELD_OPEN = "door_held_open"
    DOOR_OPENED = "door_opened"  # a door contact's magnet moves away
    DOOR_CLOSED = "door_closed"
    LOW_BATTERY = "low_battery"
    SILENCED = "silenced"  # smoke, and the resident pressed the silence button
    FAULT = "fault"  # a smoke detector's own fault flag
    TAMPER = "tamper"  # cover opened / removed from the wall
    ARMED = "armed"  # an alarm keypad armed (away or home)
    DISARMED = "disarmed"
    LOCKED = "locked"  # a door lock thrown (by hand, key or auto-lock)
    LOCK_JAMMED = "lock_jammed"
    OCCUPIED = "occupied"  # a motion sensor or presence radar sees someone
    VACANT = "vacant"  # ... and then no one
    WATER_FLOW = "water_flow"  # water running through a meter
    LEAK = "leak"  # a water meter's own continuous-flow alarm
    BURST = "burst"  # a water meter's flow above the pipe's rating
    ALARM = "alarm"  # a profile simulated from its field specs: one of its rules' conditions met


class UnsupportedModel(LookupError):
    """No simulator exists for the profile's device model."""


class UnsupportedEvent(ValueError):
    """The device model cannot report that event."""


@dataclass(frozen=True, slots=True)
class Message:
    """One payload ready to publish."""

    topic: str
    payload: bytes
    model: str
    event: Event


class SimulatedDevice:
    """One installed device: its topic, its battery and counters, and the payloads it sends."""

    def __init__(
        self,
        device_id: str,
        community: str,
        building: str,
        profile: DeviceProfile,
        *,
        unit: str | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.device_id = device_id
        self.community = community
        self.building = building
        self.unit = unit
        self.profile = profile
        self.model = _MODELS.get(profile.name) or _generic_model(profile)
        self.topic = self._render_topic()
        self.clock = clock
        # str seeds hash with SHA-512: reproducible across runs and processes
        self.rng = random.Random(f"{seed}:{community}:{device_id}")
        self.seq = 0
        self.battery = self.rng.uniform(60.0, 100.0)
        self.ip_address = (
            f"10.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        )
        self.door = 1 + self.rng.randrange(2)
        self.scene = self.rng.choice(("bathroom", "bedroom", "living_room"))
        self.closed = True  # a door contact's state: doors are closed most of the time
        # model state, no random draws here (adding draws would change every model's payloads)
        self.locked = True  # a door lock's bolt
        self.unlocked_by_visitor = False  # a lock's routine: unlocked, next the door opens
        self.armed = False  # an alarm keypad's state
        self.sos_latched = False  # keypads that latch `sos_alarm` until the next disarm
        self.occupied = False  # a motion sensor's occupancy
        self.water_m3 = 0.0  # a water meter's register, set at its first report

    def __repr__(self) -> str:
        return f"SimulatedDevice({self.device_id!r}, {self.profile.name!r})"

    @property
    def events(self) -> frozenset[Event]:
        """The events this device's model can report."""
        return self.model.events

    def document(self, event: Event = Event.ROUTINE, *, at: float | None = None) -> dict[str, Any]:
        """The next payload as a JSON object; `at` is the device time (epoch seconds)."""
        return self._document(self._resolve(event), at)

    def message(self, event: Event = Event.ROUTINE, *, at: float | None = None) -> Message:
        """The next payload, encoded, with its topic; `event` is the concrete event sent."""
        event = self._resolve(event)
        body = self._document(event, at)
        return Message(self.topic, orjson.dumps(body), self.profile.name, event)

    def _resolve(self, event: Event) -> Event:
        if event is Event.ROUTINE:
            return self.model.routine(self)
        if event not in self.model.events:
            raise UnsupportedEvent(f"{self.profile.name} cannot report {event.value!r}")
        return event

    def _document(self, event: Event, at: float | None) -> dict[str, Any]:
        body = self.model.body(self, event)
        self._stamp(body, self.clock() if at is None else at)
        return body

    def drain_battery(self) -> int:
        """Lose a little charge per report; the percentage the device reports."""
        # Routine traffic never drains below 30 %, so long load runs raise no battery alerts;
        # only the LOW_BATTERY event takes it lower (and it stays low: nobody changes it).
        if self.battery > 30.0:
            self.battery = max(30.0, self.battery - self.rng.uniform(0.0, 0.01))
        return round(self.battery)

    def linkquality(self) -> int:
        return self.rng.randrange(40, 230)

    def _render_topic(self) -> str:
        pattern = self.profile.topic_patterns()[0]
        values = {
            "device_id": self.device_id,
            "community": self.community,
            "building": self.building,
        }
        if self.unit is not None:
            values["unit"] = self.unit
        missing = [name for name in pattern.placeholders if name not in values]
        if missing:
            raise ValueError(f"topic {pattern.pattern!r} needs {', '.join(missing)}")
        return pattern.render(**values)

    def _stamp(self, body: dict[str, Any], at: float) -> None:
        # The sequence counts only payloads that carry it, so the agent sees no false gaps.
        spec = self.profile.timestamp
        if spec is not None:
            if spec.format == "iso8601":
                moment: int | str = datetime.fromtimestamp(at, _DEVICE_TZ).isoformat(
                    timespec="seconds"
                )
            elif spec.format == "epoch_s":
                moment = int(at)
            else:
                moment = int(at * 1000)
            _put(body, spec.path, moment)
        if self.profile.sequence is not None and _parent(body, self.profile.sequence.path):
            self.seq += 1
            _put(body, self.profile.sequence.path, self.seq)


def _parent(body: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: Any = body
    for part in path.split(".")[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    parent = _parent(body, path)
    if parent is not None:  # a nested path whose envelope this payload lacks is left out
        parent[path.rsplit(".", 1)[-1]] = value


# --- per-model payload bodies -------------------------------------------------------------------


def _smoke_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Zigbee IAS smoke alarm via Zigbee2MQTT."""
    if event is Event.LOW_BATTERY:
        device.battery = min(device.battery, device.rng.uniform(3.0, 9.0))
    battery = device.drain_battery()
    body: dict[str, Any] = {
        "smoke": event in (Event.SMOKE, Event.SELF_TEST),
        "tamper": False,
        "battery_low": battery < 10,
        "battery": battery,
        "test": event is Event.SELF_TEST,
        "linkquality": device.linkquality(),
    }
    if event in (Event.SMOKE_CLEARED, Event.LOW_BATTERY, Event.REPORT):
        # the full idle report, as the example in the profile
        body |= {
            "supervision_reports": True,
            "restore_reports": True,
            "trouble": False,
            "ac_status": False,
            "battery_defect": False,
        }
    return body


def _radar_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Tuya mmWave presence radar with fall detection via Zigbee2MQTT."""
    rng = device.rng
    present = event in (Event.FALL, Event.MAYBE_FALL) or rng.random() < 0.7
    status = {Event.FALL: "fall", Event.MAYBE_FALL: "maybe_fall"}.get(event, "none")
    moving = present and status == "none"
    return {
        "presence": present,
        "fall_down_status": status,
        "static_dwell_alarm": False,
        "motion_speed": round(rng.uniform(0.05, 1.2), 2) if moving else 0.0,
        "radar_scene": device.scene,
        "linkquality": device.linkquality(),
    }


def _sos_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Tuya SOS button via Zigbee2MQTT: battery reports carry `"action": null`."""
    if event is Event.LOW_BATTERY:
        device.battery = min(device.battery, device.rng.uniform(5.0, 18.0))
    return {
        "action": "emergency" if event is Event.SOS else None,
        "battery": device.drain_battery(),
        "linkquality": device.linkquality(),
    }


# Hikvision minor event codes (major type 5), per DEVICES.md
_GRANTED_CODES = (1, 75)  # valid card, face verified
_DENIED_CODES = (6, 8, 9, 76)  # no permission, expired, invalid card, face failed
_HIKVISION_MINOR = {Event.DOOR_FORCED: 27, Event.DOOR_HELD_OPEN: 28}


def _hikvision_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Hikvision ISAPI event JSON: an AccessControllerEvent envelope, or a heartbeat."""
    rng = device.rng
    envelope: dict[str, Any] = {
        "ipAddress": device.ip_address,
        "portNo": 80,
        "protocol": "HTTP",
        "dateTime": "",  # stamped by SimulatedDevice
        "activePostCount": 1,
        "eventState": "active",
    }
    if event is Event.REPORT:
        return envelope | {"eventType": "heartBeat", "eventDescription": "heartBeat"}
    detail: dict[str, Any] = {"majorEventType": 5, "doorNo": device.door}
    if event in (Event.ACCESS_GRANTED, Event.ACCESS_DENIED):
        codes = _GRANTED_CODES if event is Event.ACCESS_GRANTED else _DENIED_CODES
        minor = rng.choice(codes)
        detail["subEventType"] = minor
        if minor in (75, 76):
            detail["currentVerifyMode"] = "cardOrFace"
            if minor == 75:
                detail["employeeNoString"] = str(rng.randrange(1, 2000))
        else:
            detail["cardNo"] = str(rng.randrange(10_000_000, 99_999_999))
            detail["currentVerifyMode"] = "cardOrFace"
            if event is Event.ACCESS_GRANTED:
                detail["employeeNoString"] = str(rng.randrange(1, 2000))
    else:
        detail["subEventType"] = _HIKVISION_MINOR[event]
    detail["serialNo"] = 0  # stamped by SimulatedDevice
    return envelope | {
        "eventType": "AccessControllerEvent",
        "eventDescription": "Access Controller Event",
        "AccessControllerEvent": detail,
    }


def _access_routine(device: SimulatedDevice) -> Event:
    draw = device.rng.random()
    if draw < 0.80:
        return Event.ACCESS_GRANTED
    return Event.ACCESS_DENIED if draw < 0.92 else Event.REPORT


def _door_contact_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Zigbee door/window contact via Zigbee2MQTT: `contact` is true while the door is CLOSED."""
    if event is Event.LOW_BATTERY:
        device.battery = min(device.battery, device.rng.uniform(3.0, 9.0))
    elif event is Event.DOOR_OPENED:
        device.closed = False
    elif event is Event.DOOR_CLOSED:
        device.closed = True
    battery = device.drain_battery()
    return {
        "contact": device.closed,
        "tamper": False,
        "battery_low": battery < 10,
        "battery": battery,
        "voltage": 2600 + battery * 5,  # mV of a CR2032 cell, as Zigbee2MQTT reports it
        "linkquality": device.linkquality(),
    }


def _door_contact_routine(device: SimulatedDevice) -> Event:
    # A contact reports each change: a door that opens closes again at its next report. Now and
    # then a closed door sends a check-in with its state unchanged (Zigbee2MQTT's periodic report).
    if not device.closed:
        return Event.DOOR_CLOSED
    return Event.DOOR_OPENED if device.rng.random() < 0.85 else Event.REPORT


def _battery_for(device: SimulatedDevice, event: Event, low: tuple[float, float]) -> int:
    """The battery percentage to report; LOW_BATTERY first drops it into `low`."""
    if event is Event.LOW_BATTERY:
        device.battery = min(device.battery, device.rng.uniform(*low))
    return device.drain_battery()


def _reports_battery_state(device: SimulatedDevice) -> bool:
    """Whether this Tuya smoke detector is of the family reporting `battery_state` (about 1 in 3)."""
    # a stable hash of the id, not the device's rng: the same device is always the same family
    return zlib.crc32(device.device_id.encode()) % 3 == 0


def _tuya_smoke_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Tuya TS0601 photoelectric smoke detector via Zigbee2MQTT, in one of its two families."""
    battery = _battery_for(device, event, (3.0, 15.0))
    smoke = event in (Event.SMOKE, Event.SILENCED, Event.SELF_TEST)
    body: dict[str, Any] = {"smoke": smoke}
    fault = event is Event.FAULT
    if _reports_battery_state(device):
        state = "low" if battery < 20 else "middle" if battery < 60 else "high"
        body |= {"battery_state": state, "fault_alarm": fault}
    else:
        concentration = 0.0
        if event in (Event.SMOKE, Event.SILENCED):
            concentration = round(device.rng.uniform(12.0, 95.0), 1)
        body |= {"smoke_concentration": concentration, "device_fault": fault, "battery": battery}
    return body | {
        "silence": event is Event.SILENCED,
        "test": event is Event.SELF_TEST,
        "linkquality": device.linkquality(),
    }


_HEIMAN_FALL_STATUS = {Event.FALL: "fall_alarm", Event.MAYBE_FALL: "fall_warning"}


def _heiman_fall_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Heiman HS2FD-EF1-3.0 fall radar via Zigbee2MQTT (the occupancy bitmap, unpacked)."""
    falling = event in _HEIMAN_FALL_STATUS
    present = falling or device.rng.random() < 0.7
    moving = present and not falling and device.rng.random() < 0.6
    return {
        "occupancy": present,
        "sensor_status": "activity" if moving else "none",
        "fall_status": _HEIMAN_FALL_STATUS.get(event, "normal"),
        "enable_indicator": True,
        "sensitivity": "HighSensitivity",
        "installation_method": "Ceiling",
        "linkquality": device.linkquality(),
    }


def _wearable_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Fall-detection pendant, vendor-neutral JSON (see device_profiles/fall-wearable.yaml)."""
    battery = _battery_for(device, event, (5.0, 18.0))
    alarm = event in (Event.FALL, Event.SOS)
    return {
        "fall_detected": event is Event.FALL,
        "sos": event is Event.SOS,
        "battery": battery,
        # a pendant on its charger is not being worn; it cannot raise an alarm from there
        "charging": not alarm and device.rng.random() < 0.05,
        "rssi": device.rng.randrange(-118, -70),
    }


_KEYPAD_ACTIONS = {Event.SOS: ("emergency", "sos", "panic"), Event.ARMED: ("arm_away", "arm_home")}


def _keypad_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Zigbee IAS ACE alarm keypad via Zigbee2MQTT; some latch `sos_alarm` until disarmed."""
    rng = device.rng
    battery = _battery_for(device, event, (3.0, 15.0))
    body: dict[str, Any] = {}
    if event in (Event.ARMED, Event.DISARMED):
        device.armed = event is Event.ARMED
        action = rng.choice(_KEYPAD_ACTIONS[event]) if device.armed else "disarm"
        # Zigbee2MQTT publishes the PIN typed; the profile does not keep it
        body = {
            "action": action,
            "action_code": f"{rng.randrange(10_000):04d}",
            "action_zone": 0,
            "action_transaction": rng.randrange(256),
        }
        if event is Event.DISARMED:
            device.sos_latched = False
    elif event is Event.SOS:
        device.sos_latched = True
        body = {"action": rng.choice(_KEYPAD_ACTIONS[Event.SOS])}
    return body | {
        "sos_alarm": device.sos_latched,
        "tamper": event is Event.TAMPER,
        "battery_low": battery < 10,
        "battery": battery,
        "linkquality": device.linkquality(),
    }


def _keypad_routine(device: SimulatedDevice) -> Event:
    # residents arm when they leave and disarm when they return; now and then a check-in
    if device.rng.random() < 0.2:
        return Event.REPORT
    return Event.DISARMED if device.armed else Event.ARMED


_LOCK_SOURCES = (("keypad", 0), ("rfid", 3), ("rf", 1))


def _lock_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Zigbee door lock via Zigbee2MQTT: lock operations, the door sensor and the bolt."""
    rng = device.rng
    battery = _battery_for(device, event, (5.0, 18.0))
    body: dict[str, Any] = {}
    door_state: str | None = None
    lock_state: str | None = None
    if event is Event.ACCESS_GRANTED:
        device.locked = False
        device.unlocked_by_visitor = True
        name, code = rng.choice(_LOCK_SOURCES)
        # `action_user` is the PIN / card slot: sent by the lock, not kept by the profile
        body = {
            "action": "unlock",
            "action_source": code,
            "action_source_name": name,
            "action_user": rng.randrange(1, 20),
        }
    elif event is Event.ACCESS_DENIED:
        body = {
            "action": "unlock_failure_invalid_pin_or_id",
            "action_source": 0,
            "action_source_name": "keypad",
        }
    elif event is Event.LOCKED:
        device.locked = True
        action = rng.choice(("lock", "auto_lock", "manual_lock", "key_lock"))
        body = {"action": action, "action_source": 2, "action_source_name": "manual"}
    elif event is Event.DOOR_OPENED:
        device.closed = False
        device.unlocked_by_visitor = False
    elif event is Event.DOOR_CLOSED:
        device.closed = True
    elif event is Event.DOOR_FORCED:
        device.closed = False  # forced past a thrown bolt
        door_state = "error_forced_open"
    elif event is Event.LOCK_JAMMED:
        door_state, lock_state = "error_jammed", "not_fully_locked"
    if door_state is None:
        door_state = "closed" if device.closed else "open"
    if lock_state is None:
        lock_state = "locked" if device.locked else "unlocked"
    return body | {
        "state": "LOCK" if device.locked else "UNLOCK",
        "lock_state": lock_state,
        "door_state": door_state,
        "battery": battery,
        "linkquality": device.linkquality(),
    }


def _lock_routine(device: SimulatedDevice) -> Event:
    # the day of a unit door: unlock, open, close, lock again; a wrong PIN or a check-in now and then
    if not device.closed:
        return Event.DOOR_CLOSED
    if not device.locked:
        return Event.DOOR_OPENED if device.unlocked_by_visitor else Event.LOCKED
    draw = device.rng.random()
    if draw < 0.80:
        return Event.ACCESS_GRANTED
    return Event.ACCESS_DENIED if draw < 0.90 else Event.REPORT


def _pir_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Zigbee PIR motion sensor via Zigbee2MQTT (IAS-zone style, with a light sensor)."""
    battery = _battery_for(device, event, (3.0, 9.0))
    if event in (Event.OCCUPIED, Event.VACANT):
        device.occupied = event is Event.OCCUPIED
    return {
        "occupancy": device.occupied,
        "tamper": event is Event.TAMPER,
        "battery_low": battery < 10,
        "battery": battery,
        "voltage": 2500 + battery * 5,  # mV, as Zigbee2MQTT reports it beside the percentage
        "illuminance": device.rng.randrange(0, 800),
        "linkquality": device.linkquality(),
    }


def _occupancy_routine(device: SimulatedDevice) -> Event:
    # motion, then the quiet period ends it; now and then a periodic report with no change
    if device.rng.random() < 0.1:
        return Event.REPORT
    return Event.VACANT if device.occupied else Event.OCCUPIED


def _presence_radar_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Tuya mmWave presence radar via Zigbee2MQTT (the `presence` family)."""
    rng = device.rng
    # a routine report sees whoever is there; OCCUPIED / VACANT are the two states on demand
    present = rng.random() < 0.7 if event is Event.REPORT else event is Event.OCCUPIED
    body: dict[str, Any] = {
        "presence": present,
        "motion_speed": round(rng.uniform(0.0, 1.2), 2) if present else 0.0,
        "target_distance": round(rng.uniform(0.4, 5.5), 2) if present else 0.0,
        "illuminance": rng.randrange(0, 600),
        "linkquality": device.linkquality(),
    }
    if not present:
        body["no_occupancy_since"] = rng.choice((10, 60, 300, 600, 1800))
    return body


def _water_meter_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Water meter reader, decoded JSON (see device_profiles/water-flow-meter.yaml)."""
    rng = device.rng
    battery = _battery_for(device, event, (5.0, 18.0))
    if device.water_m3 == 0.0:
        device.water_m3 = rng.uniform(20.0, 900.0)  # an installed meter's register
    flow = 0.0
    if event is Event.WATER_FLOW:
        flow = round(rng.uniform(2.0, 12.0), 1)
    elif event is Event.LEAK:
        flow = round(rng.uniform(0.2, 1.5), 1)  # a dripping tap or a running cistern
    device.water_m3 += flow * rng.uniform(0.5, 3.0) / 1000  # litres since the last report
    return {
        "water_consumed": round(device.water_m3, 3),
        "flow": flow,
        "leak": event is Event.LEAK,
        "battery": battery,
        "linkquality": device.linkquality(),
    }


def _water_routine(device: SimulatedDevice) -> Event:
    return Event.WATER_FLOW if device.rng.random() < 0.3 else Event.REPORT


def _ias_sos_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """Zigbee IAS-zone emergency button via Zigbee2MQTT."""
    battery = _battery_for(device, event, (3.0, 9.0))
    return {
        "sos": event is Event.SOS,
        "tamper": event is Event.TAMPER,
        "battery_low": battery < 10,
        "battery": battery,
        "voltage": 2500 + battery * 5,
        "linkquality": device.linkquality(),
    }


def _lorawan_smoke_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """LoRaWAN smoke alarm, its 4-byte frame in a ChirpStack v4 uplink (lorawan-smoke-detector)."""
    rng = device.rng
    battery = _battery_for(device, event, (3.0, 15.0))
    fire = event in (Event.SMOKE, Event.SILENCED)
    flags = (
        (fire or event is Event.SELF_TEST)
        | (event is Event.SELF_TEST) << 1
        | (event is Event.TAMPER) << 2
        | (battery < 20) << 3
        | (event is Event.FAULT) << 4
        | (event is Event.SILENCED) << 5
    )
    tenths = round(rng.uniform(38.0, 55.0) * 10 if fire else rng.uniform(16.0, 26.0) * 10)
    frame = bytes((flags, battery)) + tenths.to_bytes(2, "big", signed=True)
    dev_eui = f"24e1245{zlib.crc32(device.device_id.encode()):09x}"
    return {
        "deduplicationId": f"{rng.getrandbits(128):032x}",
        "deviceInfo": {"deviceName": device.device_id, "devEui": dev_eui},
        "fPort": 2,
        "data": base64.b64encode(frame).decode(),
        "rxInfo": [{"rssi": rng.randrange(-120, -70), "snr": round(rng.uniform(-10.0, 10.0), 1)}],
    }


_WATER_FLAGS = {Event.LEAK: 0b01, Event.BURST: 0b10}
_WATER_LITRES = {
    Event.WATER_FLOW: (5.0, 300.0),
    Event.LEAK: (20.0, 200.0),
    Event.BURST: (500.0, 3000.0),
}


def _nbiot_water_body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
    """NB-IoT water meter, its 8-byte frame as hex in the platform's envelope (nbiot-water-meter)."""
    rng = device.rng
    battery = _battery_for(device, event, (5.0, 18.0))
    if device.water_m3 == 0.0:
        device.water_m3 = rng.uniform(20.0, 900.0)  # an installed meter's register
    if event in _WATER_LITRES:
        device.water_m3 += rng.uniform(*_WATER_LITRES[event]) / 1000
    flags = _WATER_FLAGS.get(event, 0) | (battery < 20) << 3 | (event is Event.TAMPER) << 4
    millivolts = 3000 + battery * 6  # a 3.6 V lithium cell sagging towards 3.0 V
    frame = (
        bytes((flags,))
        + round(device.water_m3 * 1000).to_bytes(4, "little")
        + millivolts.to_bytes(2, "little")
        + rng.randrange(4, 20).to_bytes(1, "little", signed=True)
    )
    imei = f"86{zlib.crc32(device.device_id.encode()) % 10**13:013d}"
    return {"IMEI": imei, "payload_hex": frame.hex(), "rsrp": rng.randrange(-120, -80)}


def _always(event: Event) -> Callable[[SimulatedDevice], Event]:
    return lambda _device: event


@dataclass(frozen=True, slots=True)
class _Model:
    body: Callable[[SimulatedDevice, Event], dict[str, Any]]  # the payload without ts/seq
    events: frozenset[Event]
    routine: Callable[[SimulatedDevice], Event]  # which event a routine report is


_MODELS: dict[str, _Model] = {
    "zigbee-ias-smoke": _Model(
        _smoke_body,
        frozenset(
            {Event.REPORT, Event.SMOKE, Event.SMOKE_CLEARED, Event.SELF_TEST, Event.LOW_BATTERY}
        ),
        _always(Event.REPORT),
    ),
    "tuya-fall-radar": _Model(
        _radar_body, frozenset({Event.REPORT, Event.FALL, Event.MAYBE_FALL}), _always(Event.REPORT)
    ),
    "tuya-sos-button": _Model(
        _sos_body, frozenset({Event.REPORT, Event.SOS, Event.LOW_BATTERY}), _always(Event.REPORT)
    ),
    "hikvision-access-controller": _Model(
        _hikvision_body,
        frozenset(
            {
                Event.REPORT,
                Event.ACCESS_GRANTED,
                Event.ACCESS_DENIED,
                Event.DOOR_FORCED,
                Event.DOOR_HELD_OPEN,
            }
        ),
        _access_routine,
    ),
    "zigbee-door-contact": _Model(
        _door_contact_body,
        frozenset({Event.REPORT, Event.DOOR_OPENED, Event.DOOR_CLOSED, Event.LOW_BATTERY}),
        _door_contact_routine,
    ),
    "tuya-smoke-detector": _Model(
        _tuya_smoke_body,
        frozenset(
            {
                Event.REPORT,
                Event.SMOKE,
                Event.SMOKE_CLEARED,
                Event.SELF_TEST,
                Event.SILENCED,
                Event.FAULT,
                Event.LOW_BATTERY,
            }
        ),
        _always(Event.REPORT),
    ),
    "heiman-fall-sensor": _Model(
        _heiman_fall_body,
        frozenset({Event.REPORT, Event.FALL, Event.MAYBE_FALL}),
        _always(Event.REPORT),
    ),
    "fall-wearable": _Model(
        _wearable_body,
        frozenset({Event.REPORT, Event.FALL, Event.SOS, Event.LOW_BATTERY}),
        _always(Event.REPORT),
    ),
    "zigbee-alarm-keypad": _Model(
        _keypad_body,
        frozenset(
            {
                Event.REPORT,
                Event.ARMED,
                Event.DISARMED,
                Event.SOS,
                Event.TAMPER,
                Event.LOW_BATTERY,
            }
        ),
        _keypad_routine,
    ),
    "zigbee-lock": _Model(
        _lock_body,
        frozenset(
            {
                Event.REPORT,
                Event.ACCESS_GRANTED,
                Event.ACCESS_DENIED,
                Event.DOOR_OPENED,
                Event.DOOR_CLOSED,
                Event.LOCKED,
                Event.DOOR_FORCED,
                Event.LOCK_JAMMED,
                Event.LOW_BATTERY,
            }
        ),
        _lock_routine,
    ),
    "zigbee-pir-motion": _Model(
        _pir_body,
        frozenset({Event.REPORT, Event.OCCUPIED, Event.VACANT, Event.TAMPER, Event.LOW_BATTERY}),
        _occupancy_routine,
    ),
    "tuya-presence-radar": _Model(
        _presence_radar_body,
        frozenset({Event.REPORT, Event.OCCUPIED, Event.VACANT}),
        _always(Event.REPORT),
    ),
    "water-flow-meter": _Model(
        _water_meter_body,
        frozenset({Event.REPORT, Event.WATER_FLOW, Event.LEAK, Event.LOW_BATTERY}),
        _water_routine,
    ),
    "ias-sos-button": _Model(
        _ias_sos_body,
        frozenset({Event.REPORT, Event.SOS, Event.TAMPER, Event.LOW_BATTERY}),
        _always(Event.REPORT),
    ),
    "lorawan-smoke-detector": _Model(
        _lorawan_smoke_body,
        frozenset(
            {
                Event.REPORT,
                Event.SMOKE,
                Event.SMOKE_CLEARED,
                Event.SELF_TEST,
                Event.SILENCED,
                Event.FAULT,
                Event.TAMPER,
                Event.LOW_BATTERY,
            }
        ),
        _always(Event.REPORT),
    ),
    "nbiot-water-meter": _Model(
        _nbiot_water_body,
        frozenset(
            {
                Event.REPORT,
                Event.WATER_FLOW,
                Event.LEAK,
                Event.BURST,
                Event.TAMPER,
                Event.LOW_BATTERY,
            }
        ),
        _water_routine,
    ),
}


def _generic_model(profile: DeviceProfile) -> _Model:
    """A model for a profile with no hand-written body: payloads from its field specs."""
    if profile.format != "json":
        raise UnsupportedModel(
            f"cannot generate payloads for {profile.format} profile {profile.name!r}: "
            f"only JSON profiles are simulated from their field specs "
            f"(hand-written: {', '.join(sorted(_MODELS))})"
        )
    payloads = GenericPayloads(profile)
    events = {Event.REPORT}
    if payloads.alarms:
        events.add(Event.ALARM)
    if payloads.battery is not None:
        events.add(Event.LOW_BATTERY)

    def body(device: SimulatedDevice, event: Event) -> dict[str, Any]:
        battery = _battery_for(device, event, (3.0, 9.0)) if payloads.battery else None
        return payloads.body(device.rng, alarm=event is Event.ALARM, battery=battery)

    return _Model(body, frozenset(events), _always(Event.REPORT))


def simulated_models() -> list[str]:
    """Device models (profile names) that have a simulator."""
    return sorted(_MODELS)
