"""Realistic traffic: heartbeats at each profile's interval, routine events and rare alarms per
device category, merged into one stream in simulated time.

The stream is the order in which a real community's messages would arrive; the publisher plays it
at whatever `--rate` it is given, so simulated time runs faster (or slower) than the wall clock.
Payloads still carry the wall-clock time, so the agent trusts them.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass

from simulators.sensors import Event, SimulatedDevice

_HOUR = 3600.0
_YEAR = 365 * 24 * _HOUR

# Routine traffic per device and hour, by profile category (besides heartbeats). Rough figures
# for a residential estate: a gate reader sees ~700 passages a day, a unit door is opened a few
# dozen times, a PIR fires on each movement in a hallway, a meter reports each draw of water.
ROUTINE_PER_HOUR: dict[str, float] = {
    "access": 30.0,
    "lock": 4.0,
    "keypad": 0.2,  # armed when leaving, disarmed when back
    "door": 2.0,
    "motion": 6.0,
    "presence": 4.0,
    "water": 3.0,
    "fall": 2.0,  # a radar's presence changes
    "smoke": 0.0,  # smoke alarms and SOS buttons only check in, and alarm
    "sos": 0.0,
}
ROUTINE_DEFAULT_PER_HOUR = 1.0  # a category not listed (a profile dropped into a directory)

# Alarms and other rare events per device and year. Sources: fire services count a few dwelling
# fires per 1,000 homes a year and several times as many nuisance alarms; about one in three
# people over 65 falls each year, and fall radars report several false "maybe" falls for each
# real one; SOS buttons see a couple of presses a year, most of them by accident; batteries last
# one to two years; forced doors and tamper are rare, gates held open are not.
RARE_PER_YEAR: dict[Event, float] = {
    Event.SMOKE: 0.2,
    Event.SILENCED: 0.1,
    Event.SELF_TEST: 12.0,  # the monthly test residents are asked to do
    Event.FAULT: 0.05,
    Event.SOS: 2.0,
    Event.FALL: 0.3,
    Event.MAYBE_FALL: 3.0,
    Event.DOOR_FORCED: 0.5,
    Event.DOOR_HELD_OPEN: 50.0,
    Event.LOCK_JAMMED: 0.5,
    Event.TAMPER: 0.1,
    Event.LEAK: 0.2,
    Event.LOW_BATTERY: 0.5,
    Event.ALARM: 1.0,  # a profile simulated from its field specs: one of its rules, yearly
}
HEARTBEAT_DEFAULT_SECONDS = 3600.0  # a profile without `heartbeat_seconds` checks in hourly


@dataclass(frozen=True, slots=True)
class Due:
    """The next message of the community: which device sends which event, in simulated time."""

    at: float  # simulated seconds since the start
    device: SimulatedDevice
    event: Event


class Timeline:
    """Every device's heartbeat, routine and rare-event processes, merged in time order.

    Heartbeats are periodic (each device starts at a random phase); routine and rare events are
    Poisson processes. The same devices and seed give the same stream.

    Args:
        alarm_scale: multiplies every rare-event rate (10: ten times as many alarms as real life).
    """

    def __init__(
        self, devices: Sequence[SimulatedDevice], *, seed: int = 0, alarm_scale: float = 1.0
    ) -> None:
        if not devices:
            raise ValueError("a timeline needs at least one device")
        if alarm_scale < 0:
            raise ValueError(f"alarm_scale must be >= 0, got {alarm_scale}")
        self._rng = random.Random(f"timeline:{seed}")
        self._heap: list[tuple[float, int, int, Event, float]] = []
        self._devices = list(devices)
        self._order = 0  # a tie-breaker: the heap never compares devices
        for index, device in enumerate(self._devices):
            for event, period in self._processes(device, alarm_scale):
                if event is Event.REPORT:
                    first = self._rng.uniform(0.0, period)
                else:
                    first = self._rng.expovariate(1.0 / period)
                self._push(first, index, event, period)

    def __iter__(self) -> Timeline:
        return self

    def __next__(self) -> Due:
        at, _, index, event, period = heapq.heappop(self._heap)
        if event is Event.REPORT:
            self._push(at + period, index, event, period)
        else:
            self._push(at + self._rng.expovariate(1.0 / period), index, event, period)
        return Due(at, self._devices[index], event)

    def _push(self, at: float, index: int, event: Event, period: float) -> None:
        self._order += 1
        heapq.heappush(self._heap, (at, self._order, index, event, period))

    @staticmethod
    def _processes(device: SimulatedDevice, alarm_scale: float) -> list[tuple[Event, float]]:
        """(event, mean seconds between two of them) for each process of the device."""
        profile = device.profile
        heartbeat = float(profile.heartbeat_seconds or HEARTBEAT_DEFAULT_SECONDS)
        out = [(Event.REPORT, heartbeat)]
        routine = ROUTINE_PER_HOUR.get(profile.category, ROUTINE_DEFAULT_PER_HOUR)
        if routine > 0:
            out.append((Event.ROUTINE, _HOUR / routine))
        for event, per_year in RARE_PER_YEAR.items():
            if event in device.events and per_year * alarm_scale > 0:
                out.append((event, _YEAR / (per_year * alarm_scale)))
        return out
