"""Which alert events a notification channel sends: community, building, severity, kind, tier, hour.

A route is decided from the event alone (its time of day is the event's own `at`, in the route's
time zone), never from when delivery happens: a batch retried after an outage is routed exactly
as it was the first time, so a retry can neither add nor drop a notification.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import time, tzinfo
from zoneinfo import ZoneInfo

from edge.model import SEVERITY_RANK, AlertEvent, AlertEventKind, Severity, is_life_safety

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Local times of day [start, end); an end at or before the start wraps past midnight."""

    start: time
    end: time | None  # None: 24:00, the end of the day

    @classmethod
    def parse(cls, text: str) -> TimeWindow:
        """`"HH:MM-HH:MM"`, e.g. `"22:00-07:00"` (a night shift) or `"00:00-24:00"` (all day)."""
        found = _WINDOW.match(text.strip())
        if found is None:
            raise ValueError(f"{text!r} is not a time window HH:MM-HH:MM (e.g. 22:00-07:00)")
        h1, m1, h2, m2 = (int(g) for g in found.groups())
        if h2 == 24 and m2 != 0:
            raise ValueError(f"{text!r}: 24:MM is only valid as 24:00")
        end = None if h2 == 24 else time(h2, m2)
        if end == time(h1, m1):
            raise ValueError(f"{text!r} is empty: give 00:00-24:00 for the whole day")
        return cls(time(h1, m1), end)

    def contains(self, at: time) -> bool:
        if self.end is None:
            return at >= self.start
        if self.start < self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end  # wraps past midnight

    def __str__(self) -> str:
        end = "24:00" if self.end is None else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


@dataclass(frozen=True, slots=True)
class Route:
    """A filter over alert events; an empty criterion (None) matches everything.

    Args:
        tiers: escalation tiers (`AlertEvent.tier`); None inside it is the default audience.
        hours: windows of local time of day in `zone`; the event matches if any contains it.
    """

    communities: frozenset[str] | None = None
    buildings: frozenset[str] | None = None
    severities: frozenset[Severity] | None = None
    kinds: frozenset[AlertEventKind] | None = None
    tiers: frozenset[str | None] | None = None
    hours: tuple[TimeWindow, ...] | None = None
    zone: tzinfo = SHANGHAI

    @staticmethod
    def at_least(severity: Severity) -> frozenset[Severity]:
        """Every severity as urgent as `severity` or more (critical is the most urgent)."""
        rank = SEVERITY_RANK[severity]
        return frozenset(s for s, r in SEVERITY_RANK.items() if r <= rank)

    def mismatch(self, event: AlertEvent) -> str | None:
        """None when the route takes the event; else the first criterion that refuses it."""
        alert = event.alert
        if not _within(alert.community, self.communities):
            return f"community {alert.community}"
        if not _within(alert.building, self.buildings):
            return f"building {alert.building}"
        if not _within(alert.severity, self.severities):
            return f"severity {alert.severity}"
        if not _within(event.kind, self.kinds):
            return f"kind {event.kind}"
        if not _within(event.tier, self.tiers):
            return f"tier {event.tier or 'default'}"
        if self.hours is not None and not is_life_safety(alert):  # a life ignores quiet hours
            local = event.at.astimezone(self.zone).time()
            if not any(w.contains(local) for w in self.hours):
                return f"time {local.strftime('%H:%M')} outside {', '.join(map(str, self.hours))}"
        return None


EVERYTHING = Route()


def _within(value: object, allowed: Collection[object] | None) -> bool:
    return allowed is None or value in allowed
