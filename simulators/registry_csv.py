"""The device registry CSV for simulated devices, so an installer can register what they simulate."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from simulators.sensors import SimulatedDevice

HEADER = ("device_id", "model", "community", "building", "unit")  # see README, the registry


def registry_csv(devices: Iterable[SimulatedDevice]) -> str:
    """One row per device, in the agent's registry format (an empty unit for shared devices)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for device in devices:
        writer.writerow(
            (
                device.device_id,
                device.profile.name,
                device.community,
                device.building,
                device.unit or "",
            )
        )
    return out.getvalue()


def write_registry(devices: Iterable[SimulatedDevice], path: Path) -> int:
    """Write the registry CSV to `path`; the number of devices written."""
    text = registry_csv(devices)
    path.write_text(text, encoding="utf-8")
    return text.count("\n") - 1
