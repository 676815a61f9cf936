"""A resident's own day, learned: for each of the last days, the local hours in which a sign of
life came (a 24-bit mask per day), whether the household was away that day, and what follows:
an hour-of-day histogram, how usual a signal is, and the hours of her day.

Kept per absence rule and household in a ring of `learn_days` 64-bit slots (day ordinal, watched
and away flags, hour mask), about 0.3 KB a household and rule, persisted with the rule state. A
day counts when the agent watched it (a rule tick or a sign) and the household was not away: a
gateway switched off for a week teaches nothing about her.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from edge.rule_spec import Rhythm, Schedule

_HOURS = 24
_MASK = (1 << _HOURS) - 1
_AWAY = 1 << _HOURS  # the household was away that day: the day is not learned from
_WATCHED = 1 << (_HOURS + 1)  # the agent watched that day: a day it was down is not learned from
_DAY_SHIFT = _HOURS + 2


@dataclass(frozen=True, slots=True)
class Day:
    """The hours of a resident's day (local, `start` <= hour < `end`) as learned."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class RhythmView:
    """What an absence rule has learned of one household, as shown through the API."""

    rule: str
    days_learned: int
    histogram: list[int]  # per local hour 0..23: days with a sign in it
    usual_share: float  # days with any sign / days learned
    own_day: Day | None  # None: still learning, or no regular hour
    watched: bool  # False: a `usual_share` rule for a home where the signal is not usual (yet)
    last_sign: datetime | None
    raised: bool  # its absence alert is open


class HouseholdRhythm:
    """The signs of the last `learn_days` days of one household, for one absence rule."""

    __slots__ = ("first_day", "slots")

    def __init__(self, learn_days: int, first_day: int) -> None:
        self.first_day = first_day  # the local day watching began: days before it are unknown
        self.slots = array("q", bytes(8 * learn_days))

    def note(self, day: int, hour: int) -> bool:
        """A sign in this local hour of this day; whether anything changed."""
        return self._mark(day, 1 << hour | _WATCHED)

    def note_watched(self, day: int) -> bool:
        """The agent is watching today (a rule tick): a day without a sign is a quiet day, not
        a day the gateway was off."""
        return self._mark(day, _WATCHED)

    def note_away(self, day: int) -> bool:
        """The household is away today: today is not learned from."""
        return self._mark(day, _AWAY)

    def _mark(self, day: int, bits: int) -> bool:
        index = day % len(self.slots)
        entry = self.slots[index]
        if entry >> _DAY_SHIFT != day:
            entry = day << _DAY_SHIFT
        marked = entry | bits
        if marked == self.slots[index]:
            return False
        self.slots[index] = marked
        return True

    def _learned(self, today: int) -> list[int]:
        """The hour masks of the completed days before `today` that were watched and not away."""
        masks: list[int] = []
        for day in range(max(self.first_day, today - len(self.slots)), today):
            entry = self.slots[day % len(self.slots)]
            if entry >> _DAY_SHIFT == day and entry & _WATCHED and not entry & _AWAY:
                masks.append(entry & _MASK)
        return masks

    def days_learned(self, today: int) -> int:
        return len(self._learned(today))

    def histogram(self, today: int) -> list[int]:
        """For each local hour 0..23, on how many of the learned days a sign came in it."""
        masks = self._learned(today)
        return [sum(1 for m in masks if m >> hour & 1) for hour in range(_HOURS)]

    def usual_share(self, today: int) -> float:
        """The share of learned days with at least one sign (0 when nothing is learned)."""
        masks = self._learned(today)
        return sum(1 for m in masks if m) / len(masks) if masks else 0.0

    def own_day(self, today: int, rhythm: Rhythm) -> Day | None:
        """Her day: from the first to the last hour with a sign on `active_share` of the days;
        None while fewer than `min_days` are learned or no hour is that regular."""
        masks = self._learned(today)
        if len(masks) < rhythm.min_days:
            return None
        need = rhythm.active_share * len(masks)
        regular = [h for h in range(_HOURS) if sum(1 for m in masks if m >> h & 1) >= need]
        if not regular:
            return None
        return Day(regular[0], regular[-1] + 1)

    def dump(self) -> list[int]:
        return [self.first_day, *self.slots]

    @classmethod
    def load(cls, value: list[int], learn_days: int) -> HouseholdRhythm:
        rhythm = cls(learn_days, int(value[0]))
        for entry in value[1:]:  # a changed learn_days: each day goes to its new slot
            day = int(entry) >> _DAY_SHIFT
            if day:
                rhythm.slots[day % learn_days] = int(entry)
        return rhythm


def local_day(ts: float, zone: ZoneInfo) -> tuple[int, int]:
    """(the local day's ordinal, the local hour) of an epoch time."""
    local = datetime.fromtimestamp(ts, zone)
    return local.toordinal(), local.hour


def today_bounds(window: Schedule, opened: datetime, own: Day | None) -> tuple[datetime, datetime]:
    """The span in which inactivity counts today: the rule's window opened at `opened`, narrowed
    to her own day when one is learned (never to nothing: then the window stands)."""
    end = datetime.combine(opened.date(), window.end, tzinfo=opened.tzinfo)
    if end <= opened:
        end += timedelta(days=1)
    if own is None:
        return opened, end
    day = opened.date()
    start = max(opened, datetime.combine(day, time(own.start), tzinfo=opened.tzinfo))
    own_end = datetime.combine(day, time(0), tzinfo=opened.tzinfo) + timedelta(hours=own.end)
    stop = min(end, own_end)
    return (start, stop) if start < stop else (opened, end)


def quiet_seconds(
    window: Schedule, own: Day | None, last: float, now: datetime, *, horizon_days: int = 7
) -> float:
    """Seconds of her days (the window, narrowed to her own day) between the last sign and `now`:
    night and the hours outside her day never count. `now` is local-aware (the rules' zone)."""
    zone = now.tzinfo
    start = datetime.fromtimestamp(last, zone)
    first = max(start.date(), now.date() - timedelta(days=horizon_days))
    total = 0.0
    day = first - timedelta(days=1)  # a window past midnight opened the day before
    while day <= now.date():
        opened = datetime.combine(day, window.start, tzinfo=zone)
        begin, end = today_bounds(window, opened, own)
        low, high = max(begin, start), min(end, now)
        if high > low:
            total += (high - low).total_seconds()
        day += timedelta(days=1)
    return total
