"""Silences: matchers (community, building, device, rule, severity) over a time span or a recurring
window. A silenced alert is still recorded; only its notifications are held back.

A recurring window is a small schedule form, `{every: day|week|month, day: N, start: "HH:MM",
duration_s: S, timezone: "Asia/Shanghai"}` (day: 0 = Monday for `week`, 1-31 for `month`; a month
without that day has no window). zoneinfo (stdlib) handles the offsets; no cron library is needed
for three forms.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.model import Alert, Severity, is_life_safety

MAX_WINDOW_S = 7 * 86400  # a recurring window longer than a week is a plain silence


class Recurrence(BaseModel):
    """A window that comes back every day, week or month (a monthly fire drill)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    every: Literal["day", "week", "month"]
    day: int | None = Field(default=None, description="0-6 (Monday = 0) for week, 1-31 for month")
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, local")
    duration_s: int = Field(gt=0, le=MAX_WINDOW_S)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _day_fits(self) -> Recurrence:
        if self.every == "day" and self.day is not None:
            raise ValueError("'day' is for every: week or month")
        if self.every == "week" and (self.day is None or not 0 <= self.day <= 6):
            raise ValueError("every: week needs day 0-6 (Monday = 0)")
        if self.every == "month" and (self.day is None or not 1 <= self.day <= 31):
            raise ValueError("every: month needs day 1-31")
        return self

    def covers(self, at: datetime) -> bool:
        """Whether `at` falls inside one of the windows."""
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone)
        hour, minute = (int(part) for part in self.start.split(":"))
        span = timedelta(seconds=self.duration_s)
        back_days = self.duration_s // 86400 + 1
        for offset in range(back_days + 1):
            day = local.date() - timedelta(days=offset)
            if self.every == "week" and day.weekday() != self.day:
                continue
            if self.every == "month" and day.day != self.day:
                continue
            begin = datetime.combine(day, time(hour, minute), tzinfo=zone)
            if begin <= at < begin + span:
                return True
        return False


class SilenceSpec(BaseModel):
    """What a person asks for: which alerts, when, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    community: str | None = None
    building: str | None = None
    device_id: str | None = None
    rule: str | None = None
    severity: Severity | None = None
    starts_at: AwareDatetime | None = None  # None: now
    ends_at: AwareDatetime | None = None  # None: only with `recurrence` (recurs until expired)
    recurrence: Recurrence | None = None
    reason: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _bounded(self) -> SilenceSpec:
        if not any((self.community, self.building, self.device_id, self.rule, self.severity)):
            raise ValueError("a silence needs at least one matcher (community, building, ...)")
        if self.ends_at is None and self.recurrence is None:
            raise ValueError("a silence needs ends_at (or a recurrence)")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Silence(SilenceSpec):
    """A stored silence; `expired_at` is set when a person ends it early."""

    id: str
    created_by: str
    created_at: AwareDatetime
    starts_at: AwareDatetime
    expired_at: AwareDatetime | None = None
    expired_by: str | None = None

    def matches(self, alert: Alert) -> bool:
        return (
            (self.community is None or self.community == alert.community)
            and (self.building is None or self.building == alert.building)
            and (self.device_id is None or self.device_id == alert.device_id)
            and (self.rule is None or self.rule == alert.rule)
            and (self.severity is None or self.severity == alert.severity)
        )

    def active(self, at: datetime) -> bool:
        """Whether the silence holds at `at` (its span, and a window of its recurrence)."""
        if at < self.starts_at:
            return False
        end = min(filter(None, (self.ends_at, self.expired_at)), default=None)
        if end is not None and at >= end:
            return False
        return self.recurrence is None or self.recurrence.covers(at)

    def over(self, at: datetime) -> bool:
        """Whether it can never hold again after `at`."""
        end = min(filter(None, (self.ends_at, self.expired_at)), default=None)
        return end is not None and at >= end


def new_silence(spec: SilenceSpec, created_by: str, now: datetime) -> Silence:
    return Silence(
        **spec.model_dump(exclude={"starts_at"}),
        starts_at=spec.starts_at or now,
        id=uuid.uuid4().hex,
        created_by=created_by,
        created_at=now,
    )


class SilenceBook:
    """The silences not yet over, in memory: checked when an alert opens or an escalation is due."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._by_id: dict[str, Silence] = {s.id: s for s in silences}

    def __len__(self) -> int:
        return len(self._by_id)

    def put(self, silence: Silence) -> None:
        self._by_id[silence.id] = silence

    def get(self, silence_id: str) -> Silence | None:
        return self._by_id.get(silence_id)

    def matching(self, alert: Alert, at: datetime) -> Silence | None:
        """The first silence that holds `alert` back at `at`, if any.

        A life-safety alarm (SOS, fall, smoke) is held only by a silence written for it, one that
        names its rule or its device (a fire drill names the smoke rule): a silence for a
        building's maintenance, a community or a severity must not keep an SOS from anyone.
        """
        life_safety = is_life_safety(alert)
        for silence in self._by_id.values():
            if life_safety and silence.rule != alert.rule and silence.device_id != alert.device_id:
                continue
            if silence.active(at) and silence.matches(alert):
                return silence
        return None

    def prune(self, at: datetime) -> None:
        """Forget silences that are over (they stay in the store for the record)."""
        for silence_id in [s.id for s in self._by_id.values() if s.over(at)]:
            del self._by_id[silence_id]
