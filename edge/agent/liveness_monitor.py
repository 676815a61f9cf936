"""The liveness monitor: raises "device offline" alerts, and one "broker lost" alert instead of many.

Runs beside the ingest lanes. While any MQTT session is down nobody can be heard, so per-device
checks pause; a session down longer than `broker_lost_after_s` raises one critical gateway alert,
cleared when every session is back. Each (re)connection restarts every device's silence count.
A stall of the agent itself (its timers waking late: SIGSTOP, swapping, a starved machine) is
logged with its length and is not counted as time the broker or the devices were silent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime

from edge.agent.pipeline import Pipeline
from edge.alerts import AlertBook, alert_key
from edge.clock import Clock
from edge.enrich import DeviceHealth
from edge.ingest import MqttSession
from edge.model import AlertEvent, DeviceRef, Reading, Severity
from edge.outbox import Outbox
from edge.rule_spec import RuleSpec
from edge.rules import Verdict

_log = logging.getLogger(__name__)
_CHUNK = 5_000  # devices checked between two yields to the event loop
# A timer this late means the process did not run: a loaded event loop is late by milliseconds,
# a GC pause by a fraction of a second; a paused or swapped-out process by seconds or more.
STALL_MIN_S = 2.0
# The wall clock moving this much more (or less) than the monotonic one over one sleep: stepped
# (NTP, an operator) or the machine was suspended (the monotonic clock stops, the wall one not).
CLOCK_STEP_MIN_S = 2.0

BROKER_LOST = RuleSpec(
    id="gateway-broker-lost",
    kind="offline",
    summary="Gateway lost its MQTT broker: no device can be heard",
    severity=Severity.CRITICAL,
)


class LivenessMonitor:
    """Checks every `check_s` which devices went silent, and whether the broker is there."""

    def __init__(
        self,
        pipeline: Pipeline,
        outbox: Outbox,
        sessions: Sequence[MqttSession],
        clock: Clock,
        *,
        gateway: DeviceRef,
        check_s: float,
        broker_lost_after_s: float,
    ) -> None:
        self.pipeline = pipeline
        self.outbox = outbox
        self.sessions = sessions
        self.clock = clock
        self.gateway = gateway
        self.check_s = check_s
        self.broker_lost_after_s = broker_lost_after_s
        self.raised = 0  # offline alerts raised since start
        self._down_since: float | None = clock.monotonic()  # nothing connected yet
        self._connects = 0
        self.stalls = 0  # times the agent's own timers woke at least STALL_MIN_S late
        self.stalled_s = 0.0  # their total length
        self.last_stall_s = 0.0
        self.clock_steps = 0  # times the wall clock moved apart from the monotonic one

    @property
    def health(self) -> DeviceHealth:
        return self.pipeline.health

    @property
    def alerts(self) -> AlertBook:
        return self.pipeline.alerts

    def restore(self) -> None:
        """Devices whose offline alert is open (from before a restart) are offline, not unknown."""
        registry = self.pipeline.registry
        for alert in self.alerts.open_alerts():
            ref = registry.find(alert.device_id)
            if ref is None or ref.community != alert.community:
                continue
            rule = self.health.rule_for(ref.model)
            if rule is not None and alert.rule == rule.id:
                self.health.mark_offline(ref, f"offline since {alert.opened_at:%Y-%m-%d %H:%M} UTC")

    async def run(self) -> None:
        while True:
            slept_at, slept_at_wall = self.clock.monotonic(), self.clock.now()
            await asyncio.sleep(self.check_s)
            self.woke(slept_at, slept_at_wall)
            await self.check()

    def woke(self, slept_at: float, slept_at_wall: datetime) -> float:
        """After a sleep of `check_s` begun at (`slept_at`, `slept_at_wall`): note a stall of the
        agent and a step of the wall clock; returns the stall's length (0 for none).

        A stalled agent saw nothing during its stall: neither the broker's absence (its sessions
        were dropped because it did not answer, not because the broker went away) nor silent
        devices (what they sent waits in the broker). So the stall is taken off the time the
        broker has been missing, and device silence counts again from now.
        """
        now = self.clock.monotonic()
        slept = now - slept_at
        skew = (self.clock.now() - slept_at_wall).total_seconds() - slept
        if abs(skew) >= CLOCK_STEP_MIN_S:
            self.clock_steps += 1
            _log.warning(
                "the wall clock moved %+.1f s against the monotonic clock within %.1f s (stepped, "
                "or the machine was suspended); device times are judged against the new time",
                skew,
                slept,
            )
        late = slept - self.check_s
        if late < STALL_MIN_S:
            return 0.0
        self.stalls += 1
        self.stalled_s += late
        self.last_stall_s = late
        if self._down_since is not None:
            self._down_since += late  # down before the stall: only the time we were looking
        self.health.baseline = now
        down = not all(s.status.connected for s in self.sessions)
        _log.warning(
            "the agent stalled for %.1f s (its timers woke that late: the process was paused, "
            "swapped out or starved, not the broker gone)%s; the stall does not count towards %s "
            "or device silence (stalls so far: %d, %.1f s in all)",
            late,
            "; its broker sessions were dropped meanwhile and reconnect" if down else "",
            BROKER_LOST.id,
            self.stalls,
            self.stalled_s,
        )
        return late

    async def check(self) -> list[AlertEvent]:
        """One round: the broker first, then (when it is there) every device; commits the events."""
        now = self.clock.monotonic()
        events: list[AlertEvent] = []
        connects = sum(s.status.connects for s in self.sessions)
        if not all(s.status.connected for s in self.sessions):
            if self._down_since is None:
                self._down_since = now
            if now - self._down_since >= self.broker_lost_after_s:
                event = self._apply(BROKER_LOST, self.gateway, "raise")
                if event is not None:
                    _log.error(
                        "no MQTT broker for %.0f s: raised %s; device offline checks paused",
                        now - self._down_since,
                        BROKER_LOST.id,
                    )
                    events.append(event)
        else:
            if self._down_since is not None or connects != self._connects:
                # whatever was published while we were away arrives now: count from here
                self.health.baseline = now
            self._down_since = None
            event = self._apply(BROKER_LOST, self.gateway, "clear")
            if event is not None:
                _log.warning("MQTT broker back: %s resolved", BROKER_LOST.id)
                events.append(event)
            events.extend(await self._offline_devices())
        self._connects = connects
        if events:
            await self.outbox.commit(events=events)
        return events

    async def _offline_devices(self) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        registry = self.pipeline.registry
        devices = list(registry.devices())
        for start in range(0, len(devices), _CHUNK):
            if self.pipeline.registry is not registry:
                break  # reloaded meanwhile: the next round checks the new one
            for device in self.health.overdue(devices[start : start + _CHUNK]):
                rule = self.health.rule_for(device.model)
                if rule is None or self.alerts.is_open(alert_key(rule.id, device)):
                    continue
                event = self._apply(rule, device, "raise")
                if event is not None:
                    self.raised += 1
                    events.append(event)
            await asyncio.sleep(0)
        if events:
            _log.warning("%d devices went offline", len(events))
        return events

    def _apply(self, rule: RuleSpec, device: DeviceRef, action: str) -> AlertEvent | None:
        now = self.clock.now()
        if action == "clear" and not self.alerts.is_open(alert_key(rule.id, device)):
            return None
        if action == "raise" and self.alerts.is_open(alert_key(rule.id, device)):
            return None
        reading = Reading.model_construct(
            device=device, fields={}, at=now, received_at=now, time_source="gateway", seq=None
        )
        return self.alerts.apply(Verdict(rule, "raise" if action == "raise" else "clear", reading))
