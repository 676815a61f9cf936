"""What the bench publishes: distinct readings of a simulated community, and SOS presses.

Every message is a reading of its own (the device's next sequence number and its own timestamp),
so the time-series server stores each one and a count read back is a count of messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson

from edge.decode import ProfileRegistry, default_profile_dir
from simulators.community import build_community
from simulators.sensors import SimulatedDevice

SOS_MODEL = "tuya-sos-button"

# One numeric field per model that every routine message of that model writes: counting these
# points in the time-series server counts the messages stored (an access controller's routine
# traffic is access events and heartbeats, each written as its own enum flag).
COUNTED_FIELDS = (
    "smoke_battery",
    "sos_battery",
    "fall_linkquality",
    "access_event_type_access",
    "access_event_type_heartbeat",
    "door_battery",
)

Member = tuple[str, str, str]  # device id, model (profile name), building
Message = tuple[str, bytes]  # topic, payload


@dataclass(frozen=True)
class Traffic:
    """`messages` readings from the devices of `members`, round-robin, one community.

    Device timestamps are spread evenly over the `span_s` seconds before `end` (epoch seconds), in
    publishing order; a span of at least messages / devices seconds gives each device one reading
    per second at most, so no two readings of a device share a timestamp.
    """

    community: str
    members: tuple[Member, ...]
    messages: int
    span_s: float
    end: float
    seed: int = 0

    @property
    def devices(self) -> int:
        return len(self.members)


# a telemetry-lane model: background telemetry that shares no MQTT session with the alarms
TELEMETRY_MODEL = "zigbee-door-contact"


def roster(
    devices: int, community: str, seed: int = 0, model: str | None = None
) -> tuple[Member, ...]:
    """The devices of the standard mixed community (the simulators' mix of models: every one
    on the alarm lane), or `devices` of one `model`."""
    return tuple(
        (d.device_id, d.profile.name, d.building)
        for d in build_community(devices, community, seed=seed, model=model)
    )


def min_span_s(messages: int, devices: int) -> float:
    """The shortest timestamp span that keeps each device at one reading a second or less."""
    return float(math.ceil(messages / max(devices, 1)))


def _devices(traffic: Traffic, part: int, parts: int) -> list[tuple[int, SimulatedDevice]]:
    profiles = ProfileRegistry.load(default_profile_dir())
    return [
        (
            index,
            SimulatedDevice(
                device_id, traffic.community, building, profiles.get(model), seed=traffic.seed
            ),
        )
        for index, (device_id, model, building) in enumerate(traffic.members)
        if index % parts == part
    ]


def messages(traffic: Traffic, part: int, parts: int) -> list[Message]:
    """This part's share of the traffic (devices index % parts == part), in publishing order."""
    devices = _devices(traffic, part, parts)
    count, total = traffic.messages, traffic.devices
    out: list[Message] = []
    for turn in range(math.ceil(count / max(total, 1))):
        for index, device in devices:
            number = turn * total + index  # the message's place in the whole traffic
            if number >= count:
                break
            at = traffic.end - traffic.span_s * (1.0 - number / count)
            message = device.message(at=at)
            out.append((message.topic, message.payload))
    return out


def sos_press(community: str, building: str, device_id: str, seq: int, at_ms: int) -> Message:
    """An SOS button press as Zigbee2MQTT publishes it: raises the critical `sos` alert."""
    topic = f"ce/{community}/{building}/{SOS_MODEL}/{device_id}"
    payload = {"action": "emergency", "battery": 80, "ts": at_ms, "seq": seq}
    return topic, orjson.dumps(payload)


def registry_csv(members: tuple[Member, ...], community: str) -> str:
    """A device registry file (CSV) registering every member in `community`."""
    lines = ["device_id,model,community,building,unit"]
    lines += [
        f"{device_id},{model},{community},{building}," for device_id, model, building in members
    ]
    return "\n".join(lines) + "\n"
