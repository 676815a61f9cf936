"""The building board's content: every building of the caller's communities, its floors (top
first) and units, each coloured by the worst state of its devices (alarm, offline, ok), and the
devices without a unit as the building's common areas. Pure over device statuses.

A unit's floor is read from its number as the community numbers them (101..104 on floor 1,
1201 on floor 12, `2-302` on floor 3); a unit named otherwise (`g1`) is on no floor. For a role
that may not see where residents live the units are their pseudonyms, and on no floor.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gateway.console.device_status import DeviceStatus, PlaceState, worst

_NUMBER = re.compile(r"(\d{3,4})$")


@dataclass(frozen=True, slots=True)
class Unit:
    name: str
    state: PlaceState
    devices: list[DeviceStatus]
    alert_ids: list[str]  # open alerts there, for a link to the first


@dataclass(frozen=True, slots=True)
class Floor:
    number: int | None  # None: units whose names carry no floor
    units: list[Unit]

    @property
    def state(self) -> PlaceState:
        return worst(u.state for u in self.units)


@dataclass
class Building:
    community: str
    name: str
    floors: list[Floor] = field(default_factory=list)
    common: Unit | None = None  # devices with no unit (stairs, gates, floor smoke detectors)

    @property
    def key(self) -> str:
        """A stable element id for the building (a community's names may hold any character):
        the browser replaces this one building when an alert event concerns it."""
        digest = hashlib.sha256(f"{self.community}\n{self.name}".encode()).hexdigest()
        return f"b-{digest[:12]}"

    @property
    def devices(self) -> list[DeviceStatus]:
        places = [*self.units, *([self.common] if self.common else [])]
        return [d for p in places for d in p.devices]

    @property
    def units(self) -> list[Unit]:
        return [u for f in self.floors for u in f.units]

    @property
    def state(self) -> PlaceState:
        places = [*self.units, *([self.common] if self.common else [])]
        return worst(p.state for p in places)

    def count(self, state: PlaceState) -> int:
        return sum(1 for u in self.units if u.state is state)


def floor_of(unit: str) -> int | None:
    """The floor a unit number says (101 -> 1, 1203 -> 12, 2-302 -> 3); None if it says none."""
    found = _NUMBER.search(unit)
    return int(found.group(1)) // 100 if found else None


def _natural(place: tuple[str, str]) -> tuple[str, list[tuple[int, str]]]:
    """Community, then the building's name with its numbers as numbers (b2 before b10)."""
    parts = re.split(r"(\d+)", place[1])
    return place[0], [(int(p), "") if p.isdigit() else (-1, p) for p in parts]


def _unit(name: str, devices: list[DeviceStatus]) -> Unit:
    alert_ids = [a.id for d in devices for a in d.open_alerts]
    return Unit(name, worst(d.place_state for d in devices), devices, alert_ids)


def gather(
    devices: Iterable[DeviceStatus], unit_name: Callable[[DeviceStatus], str | None]
) -> list[Building]:
    """Buildings by community then name; `unit_name` is what the viewer may see of a unit
    (the unit, a pseudonym, or None to leave the floor unknown)."""
    grouped: dict[tuple[str, str], dict[str | None, list[DeviceStatus]]] = {}
    floors_seen: dict[tuple[str, str, str], int | None] = {}
    for device in devices:
        ref = device.ref
        place = (ref.community, ref.building)
        shown = unit_name(device) if ref.unit is not None else None
        grouped.setdefault(place, {}).setdefault(shown, []).append(device)
        if shown is not None:
            floors_seen[(*place, shown)] = (
                floor_of(ref.unit) if ref.unit is not None and shown == ref.unit else None
            )
    buildings = []
    for (community, name), by_unit in sorted(grouped.items(), key=lambda g: _natural(g[0])):
        building = Building(community, name)
        floors: dict[int | None, list[Unit]] = {}
        for unit, members in by_unit.items():
            if unit is None:
                building.common = _unit("", members)
                continue
            floors.setdefault(floors_seen[(community, name, unit)], []).append(_unit(unit, members))
        numbered = sorted((n for n in floors if n is not None), reverse=True)  # top floor first
        building.floors = [
            Floor(n, sorted(floors[n], key=lambda u: u.name))
            for n in [*numbered, *([None] if None in floors else [])]
        ]
        buildings.append(building)
    return buildings
