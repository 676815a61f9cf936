"""The device registry: which community, building and unit a device is installed in.

With a registry file only registered devices are accepted. Without one the registry runs in open
enrollment: a device is accepted when its topic names its community and building. A registry file
is watched and reloaded when it changes (`RegistryFile`); a bad edit keeps the registry in force.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import sys
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edge.decode import DeviceProfile, ProfileRegistry
from edge.errors import RegistryError, UnknownDevice
from edge.identifier import Identifier
from edge.model import DeviceRef
from edge.yaml_file import describe, line_of

_log = logging.getLogger(__name__)
_MAX_PROBLEMS = 20  # a spreadsheet with a systematic mistake: enough to see it, not 50,000 lines
_CONTACT_RE = re.compile(r"^\s*(?P<name>[^:;]+?)\s*:\s*(?P<phone>[^:;]+?)\s*$")


class Contact(BaseModel):
    """Someone to call for the resident of a device's home; kept on the gateway only."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    phone: str = Field(pattern=r"^\+?[0-9][0-9 -]{3,24}$")
    relation: str | None = Field(default=None, max_length=32)


class RegisteredDevice(BaseModel):
    """One row of the registry file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # edge.identifier's rule: the same a topic's levels must meet
    device_id: Identifier
    model: str
    community: Identifier
    building: Identifier
    unit: Identifier | None = None
    install_date: date | None = None
    # a reference into the property company's resident records (never a name): who lives where
    # the device is, for the people who respond
    resident_ref: str | None = Field(default=None, max_length=64)
    emergency_contacts: list[Contact] = Field(default_factory=list, max_length=5)

    @field_validator("emergency_contacts", mode="before")
    @classmethod
    def _contacts_cell(cls, value: Any) -> Any:
        """A CSV cell holds `name:phone; name:phone`; YAML gives a list of mappings."""
        if value is None:
            return []
        if not isinstance(value, str):
            return value
        contacts = []
        for part in value.split(";"):
            if not part.strip():
                continue
            found = _CONTACT_RE.match(part)
            if found is None:
                # the cell's content is personal data: the message names the problem, not the value
                raise ValueError("expected 'name:phone' entries separated by ';'")
            contacts.append({"name": found["name"], "phone": found["phone"]})
        return contacts


@dataclass(frozen=True, slots=True)
class DeviceDetails:
    """What the registry knows of a device beyond its place: personal data stays on the gateway.

    Never copied into readings, time-series tags, alerts, dead letters or log lines.
    """

    install_date: date | None
    resident_ref: str | None
    emergency_contacts: tuple[Contact, ...]


class DeviceRegistry:
    """Resolves a decoded message's device to a `DeviceRef`, or refuses it."""

    def __init__(
        self,
        devices: dict[str, DeviceRef] | None = None,
        details: dict[str, DeviceDetails] | None = None,
    ) -> None:
        """`devices`: by id, in slot order (`slot` indexes the device's liveness state)."""
        self.open_enrollment = devices is None
        self._devices: dict[str, DeviceRef] = devices if devices is not None else {}
        self._by_slot: list[DeviceRef] = list(self._devices.values())
        if any(ref.slot != slot for slot, ref in enumerate(self._by_slot)):
            raise ValueError("registered devices need slots 0..n-1 in order")
        self._details = details or {}
        self._enrolled: dict[tuple[str, str, str, str, str | None], DeviceRef] = {}

    def __len__(self) -> int:
        """Registered devices (open enrollment: 0)."""
        return len(self._devices)

    @property
    def slots(self) -> int:
        """Devices known so far, registered or enrolled: the liveness state's size."""
        return len(self._by_slot)

    def devices(self) -> Iterator[DeviceRef]:
        """Every registered and enrolled device, in slot order."""
        return iter(self._by_slot)

    def by_slot(self, slot: int) -> DeviceRef:
        return self._by_slot[slot]

    def find(self, device_id: str) -> DeviceRef | None:
        """A device by id; with open enrollment the first one seen when communities reuse ids."""
        ref = self._devices.get(device_id)
        if ref is not None or not self.open_enrollment:
            return ref
        return next((r for r in self._by_slot if r.device_id == device_id), None)

    def details(self, device_id: str) -> DeviceDetails | None:
        return self._details.get(device_id)

    @classmethod
    def from_file(cls, path: Path, profiles: ProfileRegistry) -> DeviceRegistry:
        """Load a YAML list or a CSV file (header: device_id,model,community,building,unit, ...).

        Every bad row is reported (up to 20), each with the file and its line (in YAML, the line
        of the bad key).
        """
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RegistryError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise RegistryError(f"{path}: not UTF-8 (byte {exc.start})") from exc
        csv_file = path.suffix.lower() == ".csv"
        rows = _csv_rows(path, text) if csv_file else _yaml_rows(path, text)
        devices: dict[str, DeviceRef] = {}
        numbers = array("i")  # each registered device's row number, by slot: for duplicates
        details: dict[str, DeviceDetails] = {}
        problems: list[str] = []
        categories = {p.name: p.category for p in profiles}

        # a YAML file's device entries as nodes, for the lines of its problems: composed only
        # when there is a problem to place
        items: list[yaml.Node] | None = None

        # Nothing per row beyond what is kept (no message strings, no side tables): 100,000
        # transient objects at start-up fragment the allocator's arenas for the process's life.
        def where(number: int, line: int | None, loc: Sequence[str | int] = ()) -> str:
            nonlocal items
            if line is None and not csv_file:
                if items is None:
                    items = _yaml_items(text)
                if number <= len(items):
                    line = line_of(items[number - 1], loc)
            return f"{path}:{line}: device #{number}" if line else f"{path}: device #{number}"

        for number, (line, row) in enumerate(rows, start=1):
            try:
                device = RegisteredDevice.model_validate(row)
            except ValidationError as exc:
                loc = exc.errors()[0]["loc"]
                problems.append(f"{where(number, line, loc)}: {describe(exc)}")
                continue
            category = categories.get(device.model)
            if category is None:
                known = ", ".join(sorted(categories))
                problems.append(
                    f"{where(number, line)}: unknown model {device.model!r} (known: {known})"
                )
                continue
            first = devices.get(device.device_id)
            if first is not None:
                problems.append(
                    f"{where(number, line)}: duplicate device_id {device.device_id!r} "
                    f"(first as device #{numbers[first.slot]})"
                )
                continue
            # interned: thousands of devices share a handful of communities, buildings, models
            ref = DeviceRef(
                device_id=device.device_id,
                model=sys.intern(device.model),
                category=sys.intern(category),
                community=sys.intern(device.community),
                building=sys.intern(device.building),
                unit=device.unit,
                slot=len(devices),
            )
            devices[ref.device_id] = ref
            numbers.append(number)
            if device.install_date or device.resident_ref or device.emergency_contacts:
                details[device.device_id] = DeviceDetails(
                    device.install_date, device.resident_ref, tuple(device.emergency_contacts)
                )
        if len(problems) == 1:
            raise RegistryError(problems[0])
        if problems:
            shown = problems[:_MAX_PROBLEMS]
            more = len(problems) - len(shown)
            tail = f"\n(and {more} more problems)" if more else ""
            raise RegistryError(f"{path}: {len(problems)} bad rows:\n" + "\n".join(shown) + tail)
        return cls(devices, details)

    def resolve(
        self, profile: DeviceProfile, device_id: str, topic_values: Mapping[str, str]
    ) -> DeviceRef:
        """The device's reference; raises UnknownDevice. Identity comes from the topic only."""
        registered = self._devices.get(device_id)
        if registered is not None:
            if registered.model != profile.name:
                raise UnknownDevice(
                    f"device {device_id!r} is registered as {registered.model!r} but published "
                    f"on a {profile.name!r} topic"
                )
            # every message of a registered device passes here: two lookups, no loop
            community = topic_values.get("community")
            building = topic_values.get("building")
            if (community is not None and community != registered.community) or (
                building is not None and building != registered.building
            ):
                raise _elsewhere(registered, community, building)
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
                slot=len(self._by_slot),
            )
            self._enrolled[enrolled_key] = ref
            self._by_slot.append(ref)
        return ref


def _elsewhere(registered: DeviceRef, community: str | None, building: str | None) -> UnknownDevice:
    """Why a registered device's topic, naming another community or building, is refused."""
    key, value, named = (
        ("community", registered.community, community)
        if community is not None and community != registered.community
        else ("building", registered.building, building)
    )
    return UnknownDevice(
        f"device {registered.device_id!r} is registered in {key} {value!r} but its topic "
        f"names {named!r}"
    )


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int | None, object]]:
    # one row at a time: a 100,000-row list of dicts would be a start-up peak that the
    # allocator keeps as resident memory for the life of the process
    reader = csv.DictReader(_lines(text))
    if reader.fieldnames is None:
        raise RegistryError(f"{path}: empty file: expected a header line")
    for row in reader:
        if None in row:  # more cells than the header names
            yield reader.line_num, {"(row)": "has more cells than the header"}
            continue
        yield (
            reader.line_num,
            {k.strip(): (v.strip() or None) for k, v in row.items() if k and v is not None},
        )


def _lines(text: str) -> Iterator[str]:
    """The text's lines with their line ends, one at a time, split at "\n" as `io.StringIO`
    splits them; a StringIO would hold a copy at four bytes a character (18 MB for a
    100,000-device file: the agent's start-up peak)."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start) + 1 or size
        yield text[start:end]
        start = end


def _yaml_rows(path: Path, text: str) -> Iterator[tuple[int | None, object]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from exc
    if isinstance(data, dict) and "devices" in data:
        data = data["devices"]
    if not isinstance(data, list):
        raise RegistryError(f"{path}: expected a list of devices (or a 'devices:' key)")
    for row in data:
        yield None, row


def _yaml_items(text: str) -> list[yaml.Node]:
    """The nodes of a YAML registry's device entries (the text has loaded once already)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(root, yaml.MappingNode):
        root = next(
            (v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "devices"),
            None,
        )
    return list(root.value) if isinstance(root, yaml.SequenceNode) else []


class RegistryFile:
    """A registry file on disk, reloaded when its size, time or inode changes."""

    def __init__(self, path: Path, profiles: ProfileRegistry) -> None:
        self.path = path
        self.profiles = profiles
        self.reloads = 0
        self.failures = 0
        self.last_error: str | None = None
        self._stamp = self._stat()
        self.registry = DeviceRegistry.from_file(path, profiles)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def changed(self) -> bool:
        return self._stat() != self._stamp

    def reload(self) -> DeviceRegistry | None:
        """The new registry when the file changed and loads cleanly; None otherwise.

        A file that fails to load keeps the registry in force: the error is logged once per
        version of the file and kept in `last_error` (shown on /healthz) until a good version.
        """
        stamp = self._stat()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            registry = DeviceRegistry.from_file(self.path, self.profiles)
        except RegistryError as exc:
            self.failures += 1
            self.last_error = str(exc)
            _log.error("device registry not reloaded, the previous one stays in force: %s", exc)
            return None
        self.reloads += 1
        self.last_error = None
        _log.info("device registry reloaded from %s: %d devices", self.path, len(registry))
        self.registry = registry
        return registry
