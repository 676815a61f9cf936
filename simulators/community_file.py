"""A community described in YAML: buildings, their units and floors, and the devices in each.

id: sunshine-garden
devices:                      # every building's devices, unless it lists its own
  unit: {tuya-sos-button: 1}  # in each unit
  floor: {zigbee-ias-smoke: 1}
  building: {hikvision-access-controller: 1}
buildings:
  - {id: b01, floors: 6, units: 24}      # 4 a floor: 101-104 ... 601-604
  - {id: b02, units: [g1, g2]}           # named units
  - {id: gate, units: 0, devices: {building: {hikvision-access-controller: 2}}}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.decode import ProfileRegistry
from edge.identifier import Identifier
from edge.yaml_file import load_yaml_model
from simulators.community import PREFIXES
from simulators.sensors import SimulatedDevice

# the device registry's id rule (edge.identifier): a topic level, no MQTT wildcards, no '/'
_Id = Identifier
_Counts = dict[str, Annotated[int, Field(ge=0)]]  # device model -> how many


class CommunityFileError(ValueError):
    """The community file cannot be read or does not validate; the message names the key."""


class DeviceSet(BaseModel):
    """Devices by model: in each unit, on each floor, and once per building."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    unit: _Counts = Field(default_factory=dict)
    floor: _Counts = Field(default_factory=dict)
    building: _Counts = Field(default_factory=dict)


class BuildingSpec(BaseModel):
    """One building: its floors, its units (a count or their names) and, optionally, devices."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: _Id
    floors: int = Field(default=1, ge=1)
    units: Annotated[int, Field(ge=0)] | list[_Id]
    devices: DeviceSet | None = None  # replaces the community's `devices` for this building

    @field_validator("units", mode="before")
    @classmethod
    def _unit_numbers_are_names(cls, value: Any) -> Any:
        # `units: [101, 102]` in YAML are integers; they name units all the same
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"expected a count of units (0 or more) or a list of names, got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _units_fit(self) -> BuildingSpec:
        if isinstance(self.units, list):
            repeated = sorted({u for u in self.units if self.units.count(u) > 1})
            if repeated:
                raise ValueError(f"units named twice: {', '.join(repeated)}")
        elif math.ceil(self.units / self.floors) > 99:
            raise ValueError(f"{self.units} units on {self.floors} floors: at most 99 a floor")
        return self

    def unit_ids(self) -> list[str]:
        """Unit names; a count is numbered by floor: 101, 102, ..., 201, ..."""
        if isinstance(self.units, list):
            return list(self.units)
        per_floor = math.ceil(self.units / self.floors) if self.units else 0
        return [f"{k // per_floor + 1}{k % per_floor + 1:02d}" for k in range(self.units)]


class CommunitySpec(BaseModel):
    """The whole community file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: _Id
    devices: DeviceSet = Field(default_factory=DeviceSet)
    buildings: list[BuildingSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_buildings(self) -> CommunitySpec:
        ids = [b.id for b in self.buildings]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"building ids used twice: {', '.join(repeated)}")
        return self


def load_community(path: Path, profiles: ProfileRegistry) -> CommunitySpec:
    """Read and validate a community file; every model must have a profile in `profiles`."""
    spec = load_yaml_model(path, CommunitySpec, CommunityFileError)
    known = set(profiles.names())
    sets = [("devices", spec.devices)] + [
        (f"buildings.{n}.devices", b.devices)
        for n, b in enumerate(spec.buildings)
        if b.devices is not None
    ]
    for where, devices in sets:
        for scope in ("unit", "floor", "building"):
            for model in getattr(devices, scope):
                if model not in known:
                    raise CommunityFileError(
                        f"{path}: {where}.{scope}.{model}: unknown device model "
                        f"(known: {', '.join(sorted(known))})"
                    )
    return spec


def build_from_spec(
    spec: CommunitySpec, profiles: ProfileRegistry, *, seed: int = 0
) -> list[SimulatedDevice]:
    """The community's devices, building by building: shared devices first, then each unit's.

    Ids read where a device is: `sos-b01-101` (unit 101), `smk-b01-f03` (floor 3), `acc-gate`
    (the building); a `-N` suffix numbers several of one model in one place.
    """
    out: list[SimulatedDevice] = []
    seen: set[str] = set()

    def add(model: str, count: int, place: str, building: str, unit: str | None) -> None:
        prefix = PREFIXES.get(model, model)
        for number in range(1, count + 1):
            device_id = f"{prefix}-{place}" + (f"-{number}" if count > 1 else "")
            if device_id in seen:
                raise CommunityFileError(f"community {spec.id}: device id {device_id} twice")
            seen.add(device_id)
            device = SimulatedDevice(
                device_id, spec.id, building, profiles.get(model), unit=unit, seed=seed
            )
            out.append(device)

    for building in spec.buildings:
        devices = building.devices or spec.devices
        for model, count in devices.building.items():
            add(model, count, building.id, building.id, None)
        for floor in range(1, building.floors + 1):
            for model, count in devices.floor.items():
                add(model, count, f"{building.id}-f{floor:02d}", building.id, None)
        for unit in building.unit_ids():
            for model, count in devices.unit.items():
                add(model, count, f"{building.id}-{unit}", building.id, unit)
    return out
