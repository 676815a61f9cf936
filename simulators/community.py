"""A simulated community: N devices of mixed models spread over buildings, reproducible by seed."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass

from edge.decode import ProfileRegistry, default_profile_dir
from simulators.sensors import SimulatedDevice

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Share:
    model: str  # the profile name
    prefix: str  # device id prefix: smk-b03-0012
    weight: float


# A typical residential estate: doors and gates at every entrance, smoke alarms in most flats,
# radars and SOS buttons where elderly residents live alone.
MIX: tuple[_Share, ...] = (
    _Share("hikvision-access-controller", "acc", 0.35),
    _Share("zigbee-ias-smoke", "smk", 0.30),
    _Share("tuya-fall-radar", "rad", 0.20),
    _Share("tuya-sos-button", "sos", 0.15),
)
# Models outside the mix, simulated only on request (`build_community(..., model=...)`): door
# contacts are telemetry-lane devices, left out of the mix so that the mixed community's traffic
# (and the tests built on it) stays the life-safety and access traffic it has always been.
# simulated on request (`--profile`), not part of the default mix
_EXTRA_PREFIXES = {
    "zigbee-door-contact": "dor",
    "tuya-smoke-detector": "tsm",
    "heiman-fall-sensor": "hfd",
    "fall-wearable": "wbl",
    "zigbee-alarm-keypad": "kpd",
    "zigbee-lock": "lck",
    "zigbee-pir-motion": "pir",
    "tuya-presence-radar": "prs",
    "water-flow-meter": "wtr",
    "ias-sos-button": "ias",
    "lorawan-smoke-detector": "lsm",
    "nbiot-water-meter": "nwm",
}
PREFIXES: dict[str, str] = {share.model: share.prefix for share in MIX} | _EXTRA_PREFIXES
_DEVICES_PER_BUILDING = 40


def model_counts(devices: int) -> dict[str, int]:
    """How many devices of each model a community of `devices` gets (largest remainder)."""
    if devices < 0:
        raise ValueError(f"devices must be >= 0, got {devices}")
    total = sum(share.weight for share in MIX)
    exact = {s.model: devices * s.weight / total for s in MIX}
    counts = {model: math.floor(value) for model, value in exact.items()}
    if devices >= len(MIX):
        for model in counts:  # every model present, so every scenario has a device
            counts[model] = max(counts[model], 1)
    by_remainder = sorted(MIX, key=lambda s: (-(exact[s.model] - counts[s.model]), MIX.index(s)))
    shortfall = devices - sum(counts.values())
    for share in by_remainder[: max(shortfall, 0)]:
        counts[share.model] += 1
    while sum(counts.values()) > devices:  # the minimum of one pushed us over: trim the biggest
        biggest = max(counts, key=lambda m: counts[m])
        counts[biggest] -= 1
    return counts


def build_community(
    devices: int,
    community: str = "demo",
    buildings: int | None = None,
    seed: int = 0,
    *,
    profiles: ProfileRegistry | None = None,
    model: str | None = None,
) -> list[SimulatedDevice]:
    """`devices` simulated devices in a realistic mix, spread over `buildings` (default ~1 per 40).

    The same arguments always give the same device ids, buildings and payload sequences.

    Args:
        model: a profile name: every device is of that one model instead of the mix (a flood of
            one device type); ValueError when `profiles` has no such profile. A model without a
            hand-written body is simulated from its profile's field specs.
    """
    registry = profiles or ProfileRegistry.load(default_profile_dir())
    if model is not None and model not in registry.names():
        raise ValueError(
            f"unknown device profile {model!r} (simulated: {', '.join(registry.names())})"
        )
    if devices < 0:
        raise ValueError(f"devices must be >= 0, got {devices}")
    if buildings is None:
        buildings = max(1, math.ceil(devices / _DEVICES_PER_BUILDING))
    if buildings < 1:
        raise ValueError(f"buildings must be >= 1, got {buildings}")
    if model is None:
        counts = model_counts(devices)
        models = [name for name, count in counts.items() for _ in range(count)]
        random.Random(f"community:{seed}:{community}").shuffle(models)
    else:
        models = [model] * devices
    numbers: dict[tuple[str, str], int] = {}
    out: list[SimulatedDevice] = []
    for index, name in enumerate(models):
        building = f"b{index % buildings + 1:02d}"
        number = numbers.get((name, building), 0) + 1
        numbers[name, building] = number
        device_id = f"{PREFIXES.get(name, name)}-{building}-{number:04d}"
        out.append(SimulatedDevice(device_id, community, building, registry.get(name), seed=seed))
    _log.debug("built community %s: %d devices in %d buildings", community, devices, buildings)
    return out
