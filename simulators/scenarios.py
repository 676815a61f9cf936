"""Named scenarios: short scripted message sequences that each raise one alert in the agent."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from simulators.sensors import Event, SimulatedDevice

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScenarioStep:
    """Wait `delay` seconds after the previous step, then publish `payload` on `topic`."""

    delay: float
    device: SimulatedDevice
    event: Event
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named script: (delay seconds, device model, event) per step, and the rule it raises."""

    description: str
    rule: str  # the profile rule id the last step raises
    model: str
    steps: tuple[tuple[float, Event], ...]


SCENARIOS: dict[str, Scenario] = {
    "smoke-alarm": Scenario(
        "a smoke alarm reports idle, then detects smoke",
        "smoke",
        "zigbee-ias-smoke",
        ((0.0, Event.REPORT), (2.0, Event.SMOKE)),
    ),
    "elder-sos": Scenario(
        "an SOS button sends a battery report, then the resident presses it",
        "sos",
        "tuya-sos-button",
        ((0.0, Event.REPORT), (2.0, Event.SOS)),
    ),
    "fall": Scenario(
        "a bathroom radar sees the resident, a possible fall, then a confirmed fall",
        "fall",
        "tuya-fall-radar",
        ((0.0, Event.REPORT), (2.0, Event.MAYBE_FALL), (3.0, Event.FALL)),
    ),
    "door-forced": Scenario(
        "a card opens the door, later the door is forced open",
        "door-forced",
        "hikvision-access-controller",
        ((0.0, Event.ACCESS_GRANTED), (2.0, Event.DOOR_FORCED)),
    ),
}


def build_scenario(
    name: str,
    devices: Sequence[SimulatedDevice],
    *,
    delay_scale: float = 1.0,
    start: float | None = None,
) -> list[ScenarioStep]:
    """The scenario's messages, played by the first device of its model in `devices`.

    Args:
        delay_scale: multiplies every delay (0.1 runs ten times faster).
        start: device time of the first step (epoch seconds, default now); each payload's `ts` is
            the moment it is due, so device time matches publish time.
    """
    scenario = _scenario(name)
    if delay_scale < 0:
        raise ValueError(f"delay_scale must be >= 0, got {delay_scale}")
    device = next((d for d in devices if d.profile.name == scenario.model), None)
    if device is None:
        raise ValueError(
            f"scenario {name!r} needs a {scenario.model} device; the community has none"
        )
    due = time.time() if start is None else start
    steps: list[ScenarioStep] = []
    for delay, event in scenario.steps:
        due += delay * delay_scale
        message = device.message(event, at=due)
        steps.append(
            ScenarioStep(delay * delay_scale, device, event, message.topic, message.payload)
        )
    return steps


def _scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(
            f"unknown scenario {name!r} (known: {', '.join(sorted(SCENARIOS))})"
        ) from None
