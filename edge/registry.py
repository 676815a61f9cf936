"""The device registry: which community, building and unit a device is installed in.

With a registry file only registered devices are accepted. Without one the registry runs in open
enrollment: a device is accepted when its topic names its community and building.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.errors import RegistryError, UnknownDevice
from edge.model import DeviceRef
from edge.profiles import DeviceProfile, ProfileRegistry

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"  # no MQTT wildcards, no '/', no spaces


class RegisteredDevice(BaseModel):
    """One row of the registry file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    device_id: str = Field(pattern=_ID)
    model: str
    community: str = Field(pattern=_ID)
    building: str = Field(pattern=_ID)
    unit: str | None = None


class DeviceRegistry:
    """Resolves a decoded message's device to a `DeviceRef`, or refuses it."""

    def __init__(self, devices: dict[str, DeviceRef] | None = None) -> None:
        self.open_enrollment = devices is None
        self._devices = devices or {}  # one DeviceRef per registered device, built at load
        self._enrolled: dict[tuple[str, str, str, str, str | None], DeviceRef] = {}

    def __len__(self) -> int:
        return len(self._devices)

    @classmethod
    def from_file(cls, path: Path, profiles: ProfileRegistry) -> DeviceRegistry:
        """Load a YAML list or a CSV file (header: device_id,model,community,building,unit)."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RegistryError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        rows: Iterable[dict[str, object]]
        if path.suffix.lower() == ".csv":
            # one row at a time: a 100,000-row list of dicts would be a start-up peak that the
            # allocator keeps as resident memory for the life of the process
            rows = (
                {k.strip(): (v.strip() or None) for k, v in row.items() if k}
                for row in csv.DictReader(io.StringIO(text))
            )
        else:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise RegistryError(f"{path}: not valid YAML: {exc}") from exc
            if isinstance(data, dict) and "devices" in data:
                data = data["devices"]
            if not isinstance(data, list):
                raise RegistryError(f"{path}: expected a list of devices (or a 'devices:' key)")
            rows = data
        devices: dict[str, DeviceRef] = {}
        categories = {p.name: p.category for p in profiles}
        for number, row in enumerate(rows, start=1):
            where = f"{path}: device #{number}"
            try:
                device = RegisteredDevice.model_validate(row)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                raise RegistryError(f"{where}: {problems}") from exc
            category = categories.get(device.model)
            if category is None:
                raise RegistryError(f"{where}: unknown model {device.model!r}")
            if device.device_id in devices:
                raise RegistryError(f"{where}: duplicate device_id {device.device_id!r}")
            # interned: thousands of devices share a handful of communities, buildings, models
            devices[device.device_id] = DeviceRef(
                device_id=device.device_id,
                model=sys.intern(device.model),
                category=sys.intern(category),
                community=sys.intern(device.community),
                building=sys.intern(device.building),
                unit=device.unit,
            )
        return cls(devices)

    def resolve(
        self, profile: DeviceProfile, device_id: str, topic_values: dict[str, str]
    ) -> DeviceRef:
        """The device's reference; raises UnknownDevice. Identity comes from the topic only."""
        registered = self._devices.get(device_id)
        if registered is not None:
            if registered.model != profile.name:
                raise UnknownDevice(
                    f"device {device_id!r} is registered as {registered.model!r} but published "
                    f"on a {profile.name!r} topic"
                )
            for key, value in (
                ("community", registered.community),
                ("building", registered.building),
            ):
                named = topic_values.get(key)
                if named is not None and named != value:
                    raise UnknownDevice(
                        f"device {device_id!r} is registered in {key} {value!r} but its topic "
                        f"names {named!r}"
                    )
            return registered
        if not self.open_enrollment:
            raise UnknownDevice(f"device {device_id!r} is not registered")
        community = topic_values.get("community")
        building = topic_values.get("building")
        if community is None or building is None:
            raise UnknownDevice(
                f"device {device_id!r} is not registered and its topic names no community "
                "and building"
            )
        unit = topic_values.get("unit")
        enrolled_key = (device_id, profile.name, community, building, unit)
        ref = self._enrolled.get(enrolled_key)
        if ref is None:
            ref = DeviceRef(
                device_id=device_id,
                model=profile.name,
                category=profile.category,
                community=sys.intern(community),
                building=sys.intern(building),
                unit=unit,
            )
            self._enrolled[enrolled_key] = ref
        return ref
