"""The community `community-edge demo` plays: 阳光花园 (sunshine-garden, the shipped example in
simulators/communities/), two six-floor towers of flats, garden homes for elderly residents living
alone and the estate gate, every device registered to its building and unit with a household
(a resident reference and family contacts, kept on the gateway and masked by role), and alarm
scenarios that each visit another home, so every alert on the board has a place of its own.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from collections.abc import Sequence
from pathlib import Path

import simulators
from edge.decode import ProfileRegistry
from simulators.community_file import build_from_spec, load_community
from simulators.scenarios import SCENARIOS, ScenarioStep, build_scenario
from simulators.sensors import SimulatedDevice

COMMUNITY_FILE = Path(simulators.__file__).parent / "communities" / "sunshine-garden.yaml"
SCENARIO_ORDER = ("elder-sos", "smoke-alarm", "fall", "door-forced")
_REGISTRY_HEADER = (
    *("device_id", "model", "community", "building", "unit"),
    *("resident_ref", "emergency_contacts"),
)
# invented people for invented homes: the contacts' names are what a role may not see
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_GIVEN = ("建国", "秀英", "桂兰", "志强", "丽华", "海燕", "玉梅", "国庆", "淑珍", "春生")
_RELATIONS = ("女儿", "儿子", "侄子", "邻居")


def demo_fleet(profiles: ProfileRegistry) -> list[SimulatedDevice]:
    """Every device of the demo's community, in its building, on its floor, in its unit.

    A device in a home gets an id that does not spell the home (`sos-3f9a2c`, as a vendor's
    serial would be): the unit is what a role may not see, and an id like `sos-b01-502` would
    tell it. Landings and entrances keep ids that name them.
    """
    devices = build_from_spec(load_community(COMMUNITY_FILE, profiles), profiles, seed=7)
    out = [_opaque(d) if d.unit else d for d in devices]
    if len({d.device_id for d in out}) != len(out):
        raise ValueError("two demo devices drew the same id")
    return out


def _opaque(device: SimulatedDevice) -> SimulatedDevice:
    serial = hashlib.sha256(f"{device.community}/{device.device_id}".encode()).hexdigest()[:6]
    prefix = device.device_id.split("-")[0]
    return SimulatedDevice(
        f"{prefix}-{serial}", device.community, device.building, device.profile,
        unit=device.unit, seed=7,
    )  # fmt: skip


def registry_csv(devices: Sequence[SimulatedDevice]) -> str:
    """The device registry (edge.enrich.registry's CSV), a household for each unit's devices."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_REGISTRY_HEADER)
    for device in devices:
        resident, contacts = _household(device) if device.unit else ("", "")
        writer.writerow(
            (
                *(device.device_id, device.profile.name, device.community, device.building),
                *(device.unit or "", resident, contacts),
            )
        )
    return out.getvalue()


def _household(device: SimulatedDevice) -> tuple[str, str]:
    """The unit's resident reference and two family contacts, the same for every run."""
    rng = random.Random(f"household:{device.building}:{device.unit}")
    contacts = "; ".join(
        f"{rng.choice(_SURNAMES)}{rng.choice(_GIVEN)}({rng.choice(_RELATIONS)})"
        f":138{rng.randrange(10**8):08d}"
        for _ in range(2)
    )
    return f"HH-{device.building}-{device.unit}", contacts


class ScenarioRotation:
    """The demo's scenarios in turn (SOS, smoke, fall, forced door), each played by the next
    device of its model in a shuffled order: a different home, floor or entrance every time."""

    def __init__(self, devices: Sequence[SimulatedDevice], seed: int = 0) -> None:
        rng = random.Random(f"demo:{seed}")
        self._queues: dict[str, list[SimulatedDevice]] = {}
        for name in SCENARIO_ORDER:
            model = SCENARIOS[name].model
            found = [d for d in devices if d.profile.name == model]
            if not found:
                raise ValueError(f"the demo community has no {model} for scenario {name}")
            rng.shuffle(found)
            self._queues[name] = found
        self._turn = 0

    def next(self) -> tuple[str, SimulatedDevice, list[ScenarioStep]]:
        """The next scenario, the device that plays it, and its steps (delays in seconds)."""
        name = SCENARIO_ORDER[self._turn % len(SCENARIO_ORDER)]
        queue = self._queues[name]
        device = queue[(self._turn // len(SCENARIO_ORDER)) % len(queue)]
        self._turn += 1
        return name, device, build_scenario(name, [device])


def place_of(device: SimulatedDevice) -> str:
    """Where a device is, as the demo narrates it: building, floor, unit."""
    floor = _floor(device)
    parts = [
        device.building,
        *([f"{floor}F"] if floor else []),
        *([device.unit] if device.unit else []),
    ]
    return " / ".join(parts)


def _floor(device: SimulatedDevice) -> str | None:
    if device.unit and device.unit.isdigit() and len(device.unit) >= 3:
        return device.unit[:-2]  # flat 301 is on the third floor
    marker = device.device_id.rpartition("-f")[2]
    return marker.lstrip("0") if marker.isdigit() and "-f" in device.device_id else None
