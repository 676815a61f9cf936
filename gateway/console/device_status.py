"""A device's status as the duty console shows it: liveness (online, offline, unknown) and the
flags that need a person (low battery, tamper, an open alarm), from the agent's liveness and the
open alerts. Also the state of a place (a unit, a floor, a building) on the building board.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from edge.agent import Desk
from edge.enrich import DeviceState, Status
from edge.model import Alert, AlertStatus, DeviceRef, FieldValue

_OPEN = (AlertStatus.ACTIVE, AlertStatus.ACKNOWLEDGED)
_PAGE = 500
# what real devices send of their own state (/work/shared/DEVICES.md): IAS zones and Zigbee
# contacts `tamper` and `battery_low`, Tuya smoke detectors `battery_state` low|middle|high
FLAG_FIELDS = ("tamper", "battery_low", "battery_state")


class PlaceState(StrEnum):
    """A place's colour on the building board, the worst of its devices."""

    ALARM = "alarm"  # an open alert of a device there
    OFFLINE = "offline"  # a device there stopped reporting
    OK = "ok"


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device on the console: its liveness and what needs a person."""

    ref: DeviceRef
    state: DeviceState
    open_alerts: tuple[Alert, ...]
    # the newest value of each of FLAG_FIELDS the device sent (a device's page reads its
    # readings; a list does not): a door contact's open tamper switch has no rule to raise it
    reported: Mapping[str, FieldValue] = field(default_factory=dict)

    @property
    def liveness(self) -> str:
        return self.state.status.label  # online, offline, unknown

    @property
    def low_battery(self) -> bool:
        return (
            bool(self.state.battery_low)
            or self.reported.get("battery_low") is True
            or self.reported.get("battery_state") == "low"
            or any("battery" in a.rule for a in self.open_alerts)
        )

    @property
    def tamper(self) -> bool:
        return self.reported.get("tamper") is True or any(
            "tamper" in a.rule for a in self.open_alerts
        )

    @property
    def flags(self) -> list[str]:
        """Catalogue keys of what needs a person, worst first."""
        found = []
        if self.alarm:
            found.append("dev_alarm")
        if self.tamper:
            found.append("dev_tamper")
        if self.low_battery:
            found.append("dev_low_battery")
        return found

    @property
    def alarm(self) -> bool:
        """An open alert other than liveness, battery and tamper (flagged apart): something
        happened there that needs someone on the spot."""
        return any(_alarming(a) for a in self.open_alerts)

    @property
    def place_state(self) -> PlaceState:
        if self.alarm:
            return PlaceState.ALARM
        if self.state.status is Status.OFFLINE:
            return PlaceState.OFFLINE
        return PlaceState.OK


def _alarming(alert: Alert) -> bool:
    return not any(word in alert.rule for word in ("offline", "battery", "tamper"))


def open_alerts_by_device(desk: Desk, scope: list[str] | None) -> dict[str, list[Alert]]:
    """Every open alert of `scope` (None: all), by device id."""
    found: dict[str, list[Alert]] = {}
    if scope == []:
        return found
    for status in _OPEN:
        cursor: str | None = None
        while True:
            page = desk.alerts(scope, status, None, _PAGE, cursor)
            for alert in page.items:
                found.setdefault(alert.device_id, []).append(alert)
            cursor = page.next_cursor
            if cursor is None:
                break
    return found


def statuses(
    desk: Desk, refs: Iterable[DeviceRef], open_alerts: dict[str, list[Alert]]
) -> list[DeviceStatus]:
    return [
        DeviceStatus(
            ref,
            desk.device_state(ref),
            tuple(a for a in open_alerts.get(ref.device_id, ()) if a.community == ref.community),
        )
        for ref in refs
    ]


def worst(states: Iterable[PlaceState]) -> PlaceState:
    found = set(states)
    for state in (PlaceState.ALARM, PlaceState.OFFLINE):
        if state in found:
            return state
    return PlaceState.OK


def reported_flags(newest_first: Iterable[Mapping[str, FieldValue]]) -> dict[str, FieldValue]:
    """The newest value of each of FLAG_FIELDS among readings' fields (newest first)."""
    found: dict[str, FieldValue] = {}
    for fields in newest_first:
        for name in FLAG_FIELDS:
            if name not in found and name in fields:
                found[name] = fields[name]
        if len(found) == len(FLAG_FIELDS):
            break
    return found
