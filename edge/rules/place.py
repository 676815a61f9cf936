"""Place rules: absence in a household, correlation in a building. Their alerts' "device" is the
place (`household:<unit>`, `building:<b>`, model `community-edge`), so each key is unique per
rule and place. An absence rule with a `rhythm` learns each resident's own day
(edge/rules/rhythm.py) and counts inactivity only inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge.model import DeviceRef, Reading
from edge.rule_spec import RuleSpec, Signal, Test, compile_condition
from edge.rules.rhythm import (
    Day,
    HouseholdRhythm,
    RhythmView,
    local_day,
    quiet_seconds,
    today_bounds,
)
from edge.rules.verdict import Verdict

PLACE_MODEL = "community-edge"
OUTAGE_S = 3600.0  # a gap between rule ticks this long: the agent was down or paused
# (rule, community, building, unit) -> the rule with its overrides, None when disabled there
Resolve = Callable[[RuleSpec, str, str, str | None], RuleSpec | None]
Changes = dict[tuple[str, str], Any]
# a place rule's signal as a message meets it: the rule, the signal, its compiled `when` (None:
# any message) and whether the rule is an absence rule
Watcher = tuple[RuleSpec, Signal, Test | None, bool]


def household_ref(rule: RuleSpec, community: str, building: str, unit: str) -> DeviceRef:
    return DeviceRef(
        device_id=f"household:{unit}",
        model=PLACE_MODEL,
        category=rule.category or "household",
        community=community,
        building=building,
        unit=unit,
    )


def building_ref(rule: RuleSpec, community: str, building: str) -> DeviceRef:
    return DeviceRef(
        device_id=f"building:{building}",
        model=PLACE_MODEL,
        category=rule.category or "fire",
        community=community,
        building=building,
    )


def correlation_summary(
    summary: str, signals: Iterable[str], devices: Iterable[str], building: str, within_s: float
) -> str:
    """A correlation alert's stored line: the rule's summary, then what it saw, in English as the
    API, the logs and the channels read it. The console's Chinese page parses this wording
    (gateway/console/summaries.py; tests/test_console_pages.py checks the two agree)."""
    found = sorted(devices)
    return (
        f"{summary}: {' + '.join(sorted(signals))} from {len(found)} device"
        f"{'s' * (len(found) != 1)} in building {building} within "
        f"{within_s:g} s ({', '.join(found)})"
    )


def _place_reading(device: DeviceRef, at: datetime) -> Reading:
    return Reading.model_construct(
        device=device, fields={}, at=at, received_at=at, time_source="gateway", seq=None
    )


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class PlaceRules:
    """Absence and correlation rules over every household and building, with their state."""

    def __init__(
        self, rules: Iterable[RuleSpec], zone: ZoneInfo, resolve: Resolve, changes: Changes
    ) -> None:
        self.zone = zone
        self._resolve = resolve
        self._changes = changes  # shared with the engine: what its next flush writes
        self.absence = [r for r in rules if r.kind == "absence" and r.enabled]
        self.correlation = [r for r in rules if r.kind == "correlation" and r.enabled]
        self.by_category: dict[str, list[tuple[RuleSpec, Signal]]] = {}
        self.by_model: dict[str, list[tuple[RuleSpec, Signal]]] = {}
        for rule in (*self.absence, *self.correlation):
            for signal in rule.signals or ():
                for category in signal.categories:
                    self.by_category.setdefault(category, []).append((rule, signal))
                for model in signal.models:
                    self.by_model.setdefault(model, []).append((rule, signal))
        self._tests = {id(s): compile_condition(s.when) for _, s in self._signals() if s.when}
        # what a message meets, by (category, model, has a unit): built at its first message
        self._watchers: dict[tuple[str, str, bool], tuple[Watcher, ...]] = {}
        # absence: watched households per rule ("c/b/u"), last activity and raised, by "rule|hh"
        self.households: dict[str, dict[str, None]] = {
            r.id: dict.fromkeys(r.households if isinstance(r.households, list) else ())
            for r in self.absence
        }
        self.activity: dict[str, float] = {}
        self.absent: set[str] = set()
        self.away: set[str] = set()
        self.away_until: dict[str, float] = {}  # away households with an end: back then
        self.away_reason: dict[str, str] = {}  # "hospital", "visiting family", ...
        # rhythm rules: each household's learned days by "rule|hh", and per day what follows
        self.rhythms: dict[str, HouseholdRhythm] = {}
        self._days: dict[str, tuple[int, Day | None, float, int]] = {}
        self.since: float | None = None  # when watching began: inactivity counts from here
        # rhythm rules: the last tick (saved each minute) and when watching resumed after a gap
        # longer than OUTAGE_S (the gateway down or paused): quiet time it did not see is not
        # counted, or a restart after a day off would raise every household at once
        self.last_tick: float | None = None
        self.resumed: float = 0.0
        self._tick_saved = 0.0
        # correlation: hits (epoch s, device id, signal) and the devices already raised, by
        # "rule|c/b"
        self.hits: dict[str, list[tuple[float, str, str]]] = {}
        self.raised: dict[str, set[str]] = {}

    def watch(self, devices: Iterable[DeviceRef]) -> None:
        """Households of `all` absence rules: every unit with a device the rule watches."""
        everywhere = [r for r in self.absence if r.households == "all"]
        if not everywhere:
            return
        for device in devices:
            if device.unit is None:
                continue
            for rule in everywhere:
                if any(_covers(s, device) for s in rule.signals or ()):
                    self.households[rule.id].setdefault(
                        f"{device.community}/{device.building}/{device.unit}"
                    )

    def care_for(self, living_alone: Iterable[str]) -> None:
        """The households ("c/b/unit") whose record says living alone: `living_alone` rules
        watch exactly these from now on."""
        places = list(living_alone)
        for rule in self.absence:
            if rule.households == "living_alone":
                gone = self.households[rule.id].keys() - set(places)
                self.households[rule.id] = dict.fromkeys(places)
                for place in gone:  # no longer living alone: what was learned of her goes
                    key = f"{rule.id}|{place}"
                    self._days.pop(key, None)
                    if self.rhythms.pop(key, None) is not None:
                        self._changes["rhythm", key] = None

    def _signals(self) -> Iterable[tuple[RuleSpec, Signal]]:
        for watching in (*self.by_category.values(), *self.by_model.values()):
            yield from watching

    def _watching(self, device: DeviceRef) -> tuple[Watcher, ...]:
        """The signals a device's messages meet: its category's, then its model's. A device
        without a unit is in no household: absence rules never count its messages."""
        key = (device.category, device.model, device.unit is not None)
        watchers = self._watchers.get(key)
        if watchers is None:
            found = [
                *self.by_category.get(device.category, ()),
                *self.by_model.get(device.model, ()),
            ]
            watchers = self._watchers[key] = tuple(
                (rule, signal, self._tests.get(id(signal)), rule.kind == "absence")
                for rule, signal in found
                if device.unit is not None or rule.kind != "absence"
            )
        return watchers

    def observe(self, reading: Reading, verdicts: list[Verdict]) -> None:
        seen: set[str] | None = None  # absence rules counted: one activity per message
        for rule, signal, test, absence in self._watching(reading.device):
            if seen is not None and rule.id in seen:
                continue
            if test is not None and test(reading.fields) is not True:
                continue
            if absence:
                if seen is None:
                    seen = set()
                seen.add(rule.id)
                self._activity(rule, reading, verdicts)
            else:
                self._correlate(rule, signal, reading, verdicts)

    def _activity(self, rule: RuleSpec, reading: Reading, verdicts: list[Verdict]) -> None:
        device = reading.device
        if device.unit is None:
            return
        place = f"{device.community}/{device.building}/{device.unit}"
        watched = self.households[rule.id]
        if place not in watched:
            if rule.households != "all":
                return
            watched[place] = None
        key = f"{rule.id}|{place}"
        ts = reading.at.timestamp()
        if rule.rhythm is not None:
            day, hour = local_day(ts, self.zone)
            rhythm = self._rhythm(rule, key, day)
            if rhythm.note(day, hour):
                self._changes["rhythm", key] = rhythm.dump()
        self._signed(
            rule, key, device.community, device.building, device.unit, reading.at, verdicts
        )

    def sign(self, place: str, at: datetime) -> list[Verdict]:
        """A sign of life that no sensor saw (a check-in call answered, a visit): every absence
        rule watching the household counts it as activity. Not learned into her rhythm."""
        verdicts: list[Verdict] = []
        community, building, unit = place.split("/")
        for rule in self.absence:
            if place in self.households[rule.id]:
                key = f"{rule.id}|{place}"
                self._signed(rule, key, community, building, unit, at, verdicts)
        return verdicts

    def _rhythm(self, rule: RuleSpec, key: str, day: int) -> HouseholdRhythm:
        rhythm = self.rhythms.get(key)
        if rhythm is None:
            assert rule.rhythm is not None
            rhythm = self.rhythms[key] = HouseholdRhythm(rule.rhythm.learn_days, day)
            self._changes["rhythm", key] = rhythm.dump()
        return rhythm

    def _signed(
        self,
        rule: RuleSpec,
        key: str,
        community: str,
        building: str,
        unit: str,
        at: datetime,
        verdicts: list[Verdict],
    ) -> None:
        ts = at.timestamp()
        if ts > self.activity.get(key, 0.0):
            self.activity[key] = ts
            self._changes["activity", key] = ts
        if key in self.absent:
            self.absent.discard(key)
            self._changes["absent", key] = None
            ref = household_ref(rule, community, building, unit)
            verdicts.append(Verdict(rule, "clear", _place_reading(ref, at)))

    def _correlate(
        self, rule: RuleSpec, signal: Signal, reading: Reading, verdicts: list[Verdict]
    ) -> None:
        device = reading.device
        effective = self._resolve(rule, device.community, device.building, None)
        if effective is None or effective.within_seconds is None:
            return
        key = f"{rule.id}|{device.community}/{device.building}"
        ts = reading.at.timestamp()
        hits = [h for h in self.hits.get(key, ()) if h[0] > ts - effective.within_seconds]
        hits.append((ts, device.device_id, signal.name))
        self.hits[key] = hits
        self._changes["hits", key] = hits
        devices = sorted({h[1] for h in hits})
        names = {h[2] for h in hits}
        met = (effective.min_devices is not None and len(devices) >= effective.min_devices) or (
            effective.all_of is not None and set(effective.all_of) <= names
        )
        raised = self.raised.get(key)
        if not met or (raised is not None and raised.issuperset(devices)):
            return
        self.raised[key] = set(devices)
        self._changes["raised", key] = devices
        ref = building_ref(effective, device.community, device.building)
        summary = correlation_summary(
            effective.summary, names, devices, device.building, effective.within_seconds
        )
        named = effective.model_copy(update={"summary": summary})
        verdicts.append(Verdict(named, "raise", _place_reading(ref, reading.at)))

    def tick(self, now: datetime, verdicts: list[Verdict]) -> None:
        ts = now.timestamp()
        if self.since is None:
            self.since = ts
            self._changes["meta", "since"] = ts
        if self.last_tick is not None and ts - self.last_tick > OUTAGE_S:
            self.resumed = ts
            self._changes["meta", "resumed"] = ts
        self.last_tick = ts
        if ts - self._tick_saved >= 60:
            self._tick_saved = ts
            self._changes["meta", "tick"] = ts
        for key, hits in list(self.hits.items()):
            rule_id = key.partition("|")[0]
            rule = next((r for r in self.correlation if r.id == rule_id), None)
            within = rule.within_seconds if rule is not None and rule.within_seconds else 0.0
            kept = [h for h in hits if h[0] > ts - within]
            if len(kept) != len(hits):
                if kept:
                    self.hits[key] = kept
                    self._changes["hits", key] = kept
                else:
                    del self.hits[key]
                    self._changes["hits", key] = None
                    if self.raised.pop(key, None) is not None:
                        self._changes["raised", key] = None
        for place, until in list(self.away_until.items()):
            if until <= ts:  # the away span ended: back home, inactivity counts anew
                verdicts.extend(self.set_away(place, False, now))
        opened: dict[int, datetime | None] = {}  # one window lookup per distinct window per tick
        today: int | None = None
        for rule in self.absence:
            for place in self.households[rule.id]:
                key = f"{rule.id}|{place}"
                if rule.rhythm is not None:
                    if today is None:
                        today = local_day(ts, self.zone)[0]
                    rhythm = self._rhythm(rule, key, today)
                    marked = rhythm.note_watched(today)
                    if place in self.away:
                        marked = rhythm.note_away(today) or marked
                    if marked:
                        self._changes["rhythm", key] = rhythm.dump()
                if key in self.absent or place in self.away:
                    continue
                community, building, unit = place.split("/")
                effective = self._resolve(rule, community, building, unit)
                if effective is None or effective.window is None or not effective.quiet_hours:
                    continue
                window = effective.window
                if id(window) not in opened:
                    opened[id(window)] = window.opened_at(now, self.zone)
                start = opened[id(window)]
                if start is None:
                    continue
                if effective.rhythm is not None:
                    due = self._due(effective, key, now, start)
                else:
                    since = max(self.activity.get(key, self.since), start.timestamp())
                    due = ts - since >= effective.quiet_hours * 3600
                if due:
                    self.absent.add(key)
                    self._changes["absent", key] = 1
                    ref = household_ref(effective, community, building, unit)
                    verdicts.append(Verdict(effective, "raise", _place_reading(ref, now)))

    def learned(self, rule: RuleSpec, key: str, now: datetime) -> tuple[Day | None, float, int]:
        """(her own day, how usual a signal is, days learned) as of `now`'s local day."""
        day = local_day(now.timestamp(), self.zone)[0]
        cached = self._days.get(key)
        if cached is not None and cached[0] == day:
            return cached[1], cached[2], cached[3]
        rhythm = self._rhythm(rule, key, day)
        assert rule.rhythm is not None
        result = (
            rhythm.own_day(day, rule.rhythm),
            rhythm.usual_share(day),
            rhythm.days_learned(day),
        )
        self._days[key] = (day, *result)  # completed days only: stands all day
        return result

    def rhythm_of(self, place: str, now: datetime) -> list[RhythmView]:
        """What each rhythm rule watching the household has learned of it."""
        views: list[RhythmView] = []
        day = local_day(now.timestamp(), self.zone)[0]
        for rule in self.absence:
            if rule.rhythm is None or place not in self.households[rule.id]:
                continue
            key = f"{rule.id}|{place}"
            own, usual, learned = self.learned(rule, key, now)
            spec = rule.rhythm
            last = self.activity.get(key)
            views.append(
                RhythmView(
                    rule=rule.id,
                    days_learned=learned,
                    histogram=self.rhythms[key].histogram(day),
                    usual_share=round(usual, 3),
                    own_day=own,
                    watched=spec.usual_share == 0
                    or (learned >= spec.min_days and usual >= spec.usual_share),
                    last_sign=None if last is None else _at(last),
                    raised=key in self.absent,
                )
            )
        return views

    def _due(self, rule: RuleSpec, key: str, now: datetime, opened: datetime) -> bool:
        """Whether a rhythm rule's household is quiet too long inside her own day."""
        spec = rule.rhythm
        assert spec is not None
        assert rule.window is not None
        assert rule.quiet_hours is not None
        own, usual, learned = self.learned(rule, key, now)
        if spec.usual_share > 0 and (learned < spec.min_days or usual < spec.usual_share):
            return False  # not (yet) a home where this signal is usual
        begin, end = today_bounds(rule.window, opened, own)
        local = now.astimezone(opened.tzinfo)
        if local < begin:
            return False
        last = max(self.activity.get(key, self.since) or 0.0, self.resumed)
        if local >= end:  # her day is over: raised only if the whole of it passed without a sign
            return last < begin.timestamp() and (self.since or 0.0) <= begin.timestamp()
        if own is None:  # still learning: as a plain absence rule, from today's window on
            return now.timestamp() - max(last, begin.timestamp()) >= rule.quiet_hours * 3600
        # her day learned: quiet counts through the ends of her earlier days, never the night
        return quiet_seconds(rule.window, own, last, local) >= rule.quiet_hours * 3600

    def set_away(
        self,
        place: str,
        away: bool,
        now: datetime,
        until: datetime | None = None,
        reason: str | None = None,
    ) -> list[Verdict]:
        """Mark a household away (its absence alerts clear; back by itself at `until` when
        given) or back (inactivity counts anew)."""
        verdicts: list[Verdict] = []
        community, building, unit = place.split("/")
        if away:
            self.away.add(place)
            self.away_until.pop(place, None)
            self.away_reason.pop(place, None)
            if until is not None:
                self.away_until[place] = until.timestamp()
            if reason:
                self.away_reason[place] = reason
            self._changes["away", place] = {
                "until": self.away_until.get(place),
                "reason": self.away_reason.get(place),
            }
        else:
            self.away.discard(place)
            self.away_until.pop(place, None)
            self.away_reason.pop(place, None)
            self._changes["away", place] = None
        for rule in self.absence:
            key = f"{rule.id}|{place}"
            if away and key in self.absent:
                self.absent.discard(key)
                self._changes["absent", key] = None
                ref = household_ref(rule, community, building, unit)
                verdicts.append(Verdict(rule, "clear", _place_reading(ref, now)))
            if not away:
                self.activity[key] = now.timestamp()
                self._changes["activity", key] = now.timestamp()
        return verdicts

    def restore(self, state: dict[str, dict[str, Any]]) -> None:
        self.activity.update(state.get("activity", {}))
        self.absent.update(state.get("absent", {}))
        for place, value in state.get("away", {}).items():
            self.away.add(place)
            if isinstance(value, dict):  # {until, reason}; older files hold 1
                if value.get("until") is not None:
                    self.away_until[place] = float(value["until"])
                if value.get("reason"):
                    self.away_reason[place] = str(value["reason"])
        learn = {r.id: r.rhythm.learn_days for r in self.absence if r.rhythm is not None}
        for key, value in state.get("rhythm", {}).items():
            rule_id = key.partition("|")[0]
            if rule_id in learn:
                self.rhythms[key] = HouseholdRhythm.load(value, learn[rule_id])
        meta = state.get("meta", {})
        self.since = meta.get("since", self.since)
        self.last_tick = meta.get("tick", self.last_tick)
        self.resumed = meta.get("resumed", self.resumed)
        for key, hits in state.get("hits", {}).items():
            self.hits[key] = [(float(t), str(d), str(s)) for t, d, s in hits]
        for key, devices in state.get("raised", {}).items():
            self.raised[key] = set(devices)
        for key in (*self.activity, *self.absent):
            rule_id, _, place = key.partition("|")
            if rule_id in self.households:
                self.households[rule_id].setdefault(place)


def _covers(signal: Signal, device: DeviceRef) -> bool:
    return device.category in signal.categories or device.model in signal.models
