"""Device liveness: when each device was last heard, its battery and link, online or offline.

State is kept in flat arrays indexed by the device's registry slot (a dozen bytes per device, not
an object each: a community of 100,000 devices costs about 1.5 MB here). Times are monotonic, so a
gateway clock stepped back or forward neither hides a silent device nor invents one.

A device is offline when its model's `heartbeat_seconds` pass without a message, counted from the
later of its last message and the moment the broker was last (re)connected: while the gateway has
no broker, nobody is heard, and that is one gateway alert, not one per device.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Literal

from edge.clock import Clock
from edge.decode import DeviceProfile, ProfileRegistry
from edge.model import DeviceRef, FieldValue, Severity
from edge.rule_spec import RuleSpec

_UNKNOWN = -1
_NUMBER = (int, float)
AVAILABILITY_FIELD = "availability"  # canonical field of availability topics: online | offline


class Status(IntEnum):
    """A device's liveness; `unknown` until its first message or its first missed interval."""

    UNKNOWN = 0
    ONLINE = 1
    OFFLINE = 2

    @property
    def label(self) -> str:
        return self.name.lower()


Change = Literal["online", "offline"]
_ONLINE = int(Status.ONLINE)  # a plain int: compared and stored once per message


@dataclass(frozen=True, slots=True)
class DeviceState:
    """One device's liveness as the API shows it."""

    status: Status
    reason: str | None
    last_seen: datetime | None
    battery: int | None  # percent
    battery_low: bool | None
    linkquality: int | None
    heartbeat_seconds: int | None


DEFAULT_OFFLINE_RULE = "device-offline"


def offline_rule(profile: DeviceProfile) -> RuleSpec | None:
    """The model's offline rule: its own `kind: offline` rule, else a default when it checks in.

    A silent life-safety device (smoke detector, SOS button) is a major alert; others are minor.
    """
    own = next((r for r in profile.rules if r.kind == "offline"), None)
    if own is not None or profile.heartbeat_seconds is None:
        return own
    return RuleSpec(
        id=DEFAULT_OFFLINE_RULE,
        kind="offline",
        summary="Device stopped reporting",
        summary_zh="设备停止上报",
        severity=Severity.MAJOR if profile.lane == "alarm" else Severity.MINOR,
    )


class DeviceHealth:
    """Liveness of every device the registry knows, by slot."""

    def __init__(self, clock: Clock, profiles: ProfileRegistry) -> None:
        self._clock = clock
        self._monotonic = clock.monotonic  # bound once: read once per message
        self._interval = {p.name: float(p.heartbeat_seconds or 0) for p in profiles}
        self._heartbeat = {p.name: p.heartbeat_seconds for p in profiles}
        self._rules = {p.name: rule for p in profiles if (rule := offline_rule(p)) is not None}
        self._last_seen = array("d")  # monotonic seconds; -1: never since start
        self._status = bytearray()
        self._battery = array("b")  # percent; -1: not reported
        self._battery_low = array("b")  # 0 / 1; -1: not reported
        self._linkquality = array("h")  # -1: not reported
        self._reason: dict[int, str] = {}  # offline devices only
        self.baseline = (
            clock.monotonic()
        )  # agent start or broker reconnect: silence counts from here

    def __len__(self) -> int:
        return len(self._status)

    def rule_for(self, model: str) -> RuleSpec | None:
        """The offline rule of a model, if it is supervised."""
        return self._rules.get(model)

    def _grow(self, slot: int) -> None:
        missing = slot + 1 - len(self._status)
        if missing > 0:
            self._last_seen.extend([_UNKNOWN] * missing)
            self._status.extend(bytes(missing))
            self._battery.extend([_UNKNOWN] * missing)
            self._battery_low.extend([_UNKNOWN] * missing)
            self._linkquality.extend([_UNKNOWN] * missing)

    def reserve(self, slots: int) -> None:
        """Size the arrays for a registry of `slots` devices up front."""
        if slots:
            self._grow(slots - 1)

    def seen(self, device: DeviceRef, fields: dict[str, FieldValue]) -> Change | None:
        """Record a message; says when the device changed between online and offline."""
        slot = device.slot
        if slot < 0:
            return None
        if slot >= len(self._status):
            self._grow(slot)
        # once per message: clamped by comparisons, not min/max calls
        battery = fields.get("battery")
        if isinstance(battery, _NUMBER) and not isinstance(battery, bool):
            percent = int(battery)
            self._battery[slot] = 0 if percent < 0 else 100 if percent > 100 else percent
        low = fields.get("battery_low")
        if isinstance(low, bool):
            self._battery_low[slot] = int(low)
        quality = fields.get("linkquality")
        if isinstance(quality, _NUMBER) and not isinstance(quality, bool):
            level = int(quality)
            self._linkquality[slot] = 0 if level < 0 else 32767 if level > 32767 else level
        before = self._status[slot]
        if fields.get(AVAILABILITY_FIELD) == "offline":
            # the radio gateway (Zigbee2MQTT) says so: it lost the device before we would notice
            if before == Status.OFFLINE:
                return None
            self._status[slot] = Status.OFFLINE
            self._reason[slot] = "reported offline on its availability topic"
            return "offline"
        self._last_seen[slot] = self._monotonic()
        if before == _ONLINE:
            return None
        self._status[slot] = _ONLINE
        self._reason.pop(slot, None)
        # from unknown too: an offline alert may be open from before a restart
        return "online"

    def overdue(self, devices: Iterable[DeviceRef]) -> Iterator[DeviceRef]:
        """Devices not yet offline whose model's interval has passed in silence; marks them."""
        now = self._clock.monotonic()
        baseline = self.baseline
        for device in devices:
            interval = self._interval.get(device.model, 0.0)
            slot = device.slot
            if not interval or slot < 0:
                continue
            if slot >= len(self._status):
                self._grow(slot)
            if self._status[slot] == Status.OFFLINE:
                continue
            last = self._last_seen[slot]
            since = max(last, baseline)
            if now - since < interval:
                continue
            self._status[slot] = Status.OFFLINE
            silent = _duration(now - since)
            if last < 0:
                self._reason[slot] = f"no message for {silent} since the gateway started"
            else:
                self._reason[slot] = (
                    f"no message for {silent} (the model checks in every "
                    f"{_duration(interval)} at most)"
                )
            yield device

    def mark_offline(self, device: DeviceRef, reason: str) -> None:
        """Restore a device whose offline alert was still open when the agent started."""
        if device.slot < 0:
            return
        self._grow(device.slot)
        self._status[device.slot] = Status.OFFLINE
        self._reason[device.slot] = reason

    def status_of(self, device: DeviceRef) -> Status:
        """The device's status alone: cheap enough to filter 100,000 devices by."""
        slot = device.slot
        if slot < 0 or slot >= len(self._status):
            return Status.UNKNOWN
        return Status(self._status[slot])

    def state(self, device: DeviceRef) -> DeviceState:
        slot = device.slot
        heartbeat = self._heartbeat.get(device.model)
        if slot < 0 or slot >= len(self._status):
            return DeviceState(Status.UNKNOWN, None, None, None, None, None, heartbeat)
        last = self._last_seen[slot]
        last_seen = None
        if last >= 0:
            last_seen = self._clock.now() - timedelta(seconds=self._clock.monotonic() - last)
        return DeviceState(
            status=Status(self._status[slot]),
            reason=self._reason.get(slot),
            last_seen=last_seen,
            battery=_known(self._battery[slot]),
            battery_low=None if self._battery_low[slot] < 0 else bool(self._battery_low[slot]),
            linkquality=_known(self._linkquality[slot]),
            heartbeat_seconds=heartbeat,
        )

    def counts(self) -> dict[str, int]:
        """Devices by status (only those the arrays hold: registered, or enrolled when heard)."""
        return {s.label: self._status.count(s.value) for s in Status}

    def rebind(self, moves: Iterable[tuple[int, int]], slots: int) -> None:
        """Carry state over to a reloaded registry: (old slot, new slot) for each kept device."""
        old = (
            self._last_seen,
            self._status,
            self._battery,
            self._battery_low,
            self._linkquality,
            self._reason,
        )
        self._last_seen = array("d", [_UNKNOWN] * slots)
        self._status = bytearray(slots)
        self._battery = array("b", [_UNKNOWN] * slots)
        self._battery_low = array("b", [_UNKNOWN] * slots)
        self._linkquality = array("h", [_UNKNOWN] * slots)
        self._reason = {}
        last_seen, status, battery, battery_low, linkquality, reason = old
        for before, after in moves:
            if before >= len(status) or after >= slots:
                continue
            self._last_seen[after] = last_seen[before]
            self._status[after] = status[before]
            self._battery[after] = battery[before]
            self._battery_low[after] = battery_low[before]
            self._linkquality[after] = linkquality[before]
            if before in reason:
                self._reason[after] = reason[before]


def _known(value: int) -> int | None:
    return None if value < 0 else value


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
