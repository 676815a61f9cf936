"""Rule evaluation: a reading and its model's rules give verdicts (raise or clear an alert).

`evaluate(reading)` decides what a message decides at once: plain conditions (SOS, smoke, a
confirmed fall raise in the same batch as always), counts reaching their threshold, correlations.
`tick(now)` decides what time decides: holds that lasted, suspicions not withdrawn, households
quiet too long, windows expiring. Event times are the readings' own (`Reading.at`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.decode import ProfileRegistry
from edge.model import DeviceRef, Reading
from edge.rule_spec import RuleSpec
from edge.rules.community import CommunityRules, Override, apply_override
from edge.rules.place import PlaceRules
from edge.rules.program import COUNT, HELD, SIMPLE, Dispatch, Program
from edge.rules.rhythm import RhythmView
from edge.rules.state import RuleStateStore
from edge.rules.verdict import Verdict, evaluate_condition

__all__ = ["RuleEngine", "Verdict", "evaluate_condition"]

_new = tuple.__new__


@dataclass(slots=True)
class _Window:
    """A count rule's hits (epoch seconds) for one device (and group)."""

    rule: RuleSpec
    reading: Reading  # the latest hit: the alert's reading
    hits: deque[float]
    fired: bool = False


class RuleEngine:
    """Every device model's rules and the community's place rules, with their pending state."""

    def __init__(
        self,
        profiles: ProfileRegistry,
        community: CommunityRules | None = None,
        store: RuleStateStore | None = None,
    ) -> None:
        community = community or CommunityRules()
        self.community = community
        self.store = store
        self._by_model: dict[str, dict[str, RuleSpec]] = {
            p.name: {r.id: r for r in p.rules} for p in profiles
        }
        self._rules: dict[str, list[RuleSpec]] = {p.name: list(p.rules) for p in profiles}
        self._overrides: dict[str, list[Override]] = {}
        for override in sorted(community.overrides, key=lambda o: o.specificity):
            self._overrides.setdefault(override.rule, []).append(override)
        # offline rules are edge.enrich.liveness's; disabled rules are not evaluated at all
        self._dispatch: dict[str, Dispatch] = {
            p.name: Dispatch.of(
                (Program.of(r) for r in p.rules if r.kind != "offline" and r.enabled),
                self._overrides,
            )
            for p in profiles
        }
        self._effective_cache: dict[tuple[str, ...], RuleSpec | None] = {}
        self._effective_programs: dict[tuple[str, ...], Program | None] = {}
        self._changes: dict[tuple[str, str], Any] = {}
        self._holds: dict[str, tuple[RuleSpec, Reading]] = {}  # "rule|device" -> first reading
        self._fired: set[str] = set()  # held rules that raised and have not cleared since
        self._pending: dict[str, tuple[RuleSpec, Reading]] = {}  # confirm: the suspicion
        self._windows: dict[str, _Window] = {}
        self.places = PlaceRules(community.rules, community.timezone, self._resolve, self._changes)
        for place in community.away:
            self.places.away.add(place)
        if store is not None:
            self._restore(store.load())

    def rules_for(self, model: str) -> list[RuleSpec]:
        return self._rules.get(model, [])

    def watch(self, devices: list[DeviceRef]) -> None:
        """The registry's devices: households for absence rules that watch every home."""
        self.places.watch(devices)

    # -- per message ---------------------------------------------------------------------------

    def evaluate(self, reading: Reading) -> list[Verdict]:
        verdicts: list[Verdict] = []
        device = reading.device
        fields = reading.fields
        overridden = self._overrides
        dispatch = self._dispatch.get(device.model)
        if dispatch is None:
            programs: tuple[Program, ...] = ()
        elif dispatch.field is None:
            programs = dispatch.others
        else:
            programs = dispatch.by_value.get(fields.get(dispatch.field), dispatch.others)
        for program in programs:
            if overridden and program.rule.id in overridden:
                effective = self._effective_program(program.rule, device)
                if effective is None:
                    continue
                program = effective
            mode = program.mode
            if mode == SIMPLE:
                # built as the tuple it is: most messages clear something, and Verdict()'s
                # Python-level __new__ doubled the cost of each
                if program.when(fields):
                    verdicts.append(_new(Verdict, (program.rule, "raise", reading)))
                elif program.clear is not None and program.clear(fields):
                    verdicts.append(_new(Verdict, (program.rule, "clear", reading)))
            elif mode == HELD:
                self._held(program, reading, verdicts)
            elif mode == COUNT:
                self._count(program, reading, verdicts)
            else:
                self._confirm(program, reading, verdicts)
        places = self.places
        if device.category in places.by_category or device.model in places.by_model:
            places.observe(reading, verdicts)
        return verdicts

    def _active(self, rule: RuleSpec, at: datetime) -> bool:
        schedule = rule.schedule
        return schedule is None or schedule.opened_at(at, self.community.timezone) is not None

    def _held(self, program: Program, reading: Reading, verdicts: list[Verdict]) -> None:
        rule = program.rule
        key = f"{rule.id}|{reading.device.key}"
        met = program.when(reading.fields)
        if met:
            if rule.for_seconds is None or key in self._fired:  # scheduled only, or a repeat
                if self._active(rule, reading.at):
                    verdicts.append(Verdict(rule, "raise", reading))
            elif key not in self._holds:
                self._holds[key] = (rule, reading)
                self._changes["hold", key] = _dump(rule, reading)
            return
        if met is False and self._holds.pop(key, None) is not None:
            self._changes["hold", key] = None
        if program.clear is not None and program.clear(reading.fields):
            verdicts.append(Verdict(rule, "clear", reading))
            self._unfire(key)
        elif met is False and program.clear is None:
            self._unfire(key)

    def _unfire(self, key: str) -> None:
        if key in self._fired:
            self._fired.discard(key)
            self._changes["fired", key] = None

    def _count(self, program: Program, reading: Reading, verdicts: list[Verdict]) -> None:
        rule = program.rule
        fields = reading.fields
        if program.when(fields):
            group = "" if rule.group_by is None else str(fields.get(rule.group_by, ""))
            key = f"{rule.id}|{reading.device.key}|{group}"
            ts = reading.at.timestamp()
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = _Window(rule, reading, deque())
            window.rule, window.reading = rule, reading
            hits = window.hits
            horizon = ts - (rule.within_seconds or 0.0)
            while hits and hits[0] <= horizon:
                hits.popleft()
            hits.append(ts)
            reached = len(hits) >= (rule.at_least or 1)
            if reached and not window.fired and self._active(rule, reading.at):
                window.fired = True
                verdicts.append(Verdict(rule, "raise", reading))
            self._changes["count", key] = window  # dumped by the next flush, as it is then
        elif program.clear is not None and program.clear(fields):
            verdicts.append(Verdict(rule, "clear", reading))

    def _confirm(self, program: Program, reading: Reading, verdicts: list[Verdict]) -> None:
        rule = program.rule
        key = f"{rule.id}|{reading.device.key}"
        fields = reading.fields
        if program.confirm is not None and program.confirm(fields):
            # confirmed: raised in this very batch, whatever was pending
            if self._pending.pop(key, None) is not None:
                self._changes["confirm", key] = None
            if self._active(rule, reading.at):
                verdicts.append(Verdict(rule, "raise", reading))
        elif program.when(fields):
            if key not in self._pending:
                self._pending[key] = (rule, reading)
                self._changes["confirm", key] = _dump(rule, reading)
        elif (
            program.withdraw is not None
            and program.withdraw(fields)
            and self._pending.pop(key, None) is not None
        ):
            self._changes["confirm", key] = None
        if program.clear is not None and program.clear(fields):
            verdicts.append(Verdict(rule, "clear", reading))

    # -- per tick ------------------------------------------------------------------------------

    def tick(self, now: datetime) -> list[Verdict]:
        """What time decided since the last tick."""
        verdicts: list[Verdict] = []
        ts = now.timestamp()
        for key, (rule, reading) in list(self._holds.items()):
            if ts - reading.at.timestamp() >= (rule.for_seconds or 0.0) and self._active(rule, now):
                del self._holds[key]
                self._fired.add(key)
                self._changes["hold", key] = None
                self._changes["fired", key] = 1
                verdicts.append(Verdict(rule, "raise", reading))
        for key, (rule, reading) in list(self._pending.items()):
            if ts - reading.at.timestamp() >= (rule.within_seconds or 0.0):
                del self._pending[key]
                self._changes["confirm", key] = None
                if self._active(rule, now):
                    verdicts.append(Verdict(rule, "raise", reading))
        for key, window in list(self._windows.items()):
            hits = window.hits
            horizon = ts - (window.rule.within_seconds or 0.0)
            if hits and hits[0] > horizon:
                continue
            while hits and hits[0] <= horizon:
                hits.popleft()
            if len(hits) < (window.rule.at_least or 1):
                window.fired = False
            if hits:
                self._changes["count", key] = window
            else:
                del self._windows[key]
                self._changes["count", key] = None
        self.places.tick(now, verdicts)
        return verdicts

    def set_away(
        self,
        community: str,
        building: str,
        unit: str,
        away: bool,
        now: datetime,
        until: datetime | None = None,
        reason: str | None = None,
    ) -> list[Verdict]:
        """A household is away (absence alerts clear, none raise; back by itself at `until`)
        or back."""
        return self.places.set_away(f"{community}/{building}/{unit}", away, now, until, reason)

    def away_of(
        self, community: str, building: str, unit: str
    ) -> tuple[bool, datetime | None, str | None]:
        """(away, until when, why) of a household."""
        place = f"{community}/{building}/{unit}"
        until = self.places.away_until.get(place)
        return (
            place in self.places.away,
            None if until is None else datetime.fromtimestamp(until, UTC),
            self.places.away_reason.get(place),
        )

    def care_for(self, living_alone: Iterable[str]) -> None:
        """The households ("c/b/unit") living alone: what `living_alone` absence rules watch."""
        self.places.care_for(living_alone)

    def sign(self, community: str, building: str, unit: str, at: datetime) -> list[Verdict]:
        """A sign of life no sensor saw (a check-in answered, a visit): clears absence alerts."""
        return self.places.sign(f"{community}/{building}/{unit}", at)

    def rhythm_of(
        self, community: str, building: str, unit: str, now: datetime
    ) -> list[RhythmView]:
        """What the rhythm rules have learned of a household (empty: none watches it)."""
        return self.places.rhythm_of(f"{community}/{building}/{unit}", now)

    def is_away(self, community: str, building: str, unit: str) -> bool:
        return f"{community}/{building}/{unit}" in self.places.away

    # -- overrides -----------------------------------------------------------------------------

    def effective(self, rule: RuleSpec, device: DeviceRef) -> RuleSpec | None:
        """The rule as overridden for this device; None when disabled there."""
        return self._effective(
            rule, device.model, device.community, device.building, device.unit, device.device_id
        )

    def _effective_program(self, rule: RuleSpec, device: DeviceRef) -> Program | None:
        """`effective`, compiled: once per rule and device."""
        cache_key = (rule.id, device.model, device.community, device.building, device.unit or "",
                     device.device_id)  # fmt: skip
        if cache_key in self._effective_programs:
            return self._effective_programs[cache_key]
        effective = self.effective(rule, device)
        program = None if effective is None else Program.of(effective)
        self._effective_programs[cache_key] = program
        return program

    def _resolve(
        self, rule: RuleSpec, community: str, building: str, unit: str | None
    ) -> RuleSpec | None:
        if rule.id not in self._overrides:
            return rule if rule.enabled else None
        return self._effective(rule, "", community, building, unit, None)

    def _effective(
        self,
        rule: RuleSpec,
        model: str,
        community: str,
        building: str,
        unit: str | None,
        device_id: str | None,
    ) -> RuleSpec | None:
        cache_key = (rule.id, model, community, building, unit or "", device_id or "")
        if cache_key in self._effective_cache:
            return self._effective_cache[cache_key]
        effective = rule
        for override in self._overrides.get(rule.id, ()):  # least specific first
            if override.matches(
                model or (override.model or ""), community, building, unit, device_id
            ):
                effective = apply_override(effective, override)
        result = effective if effective.enabled else None
        self._effective_cache[cache_key] = result
        return result

    # -- state ---------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the state changed since the last flush (a no-op without a store)."""
        if self.store is not None and self._changes:
            changes = self._changes
            for change, value in changes.items():
                if isinstance(value, _Window):  # a count window changes per hit: dumped once
                    changes[change] = self._dump_window(value)
            self.store.save(changes)
        self._changes.clear()

    def _dump_window(self, window: _Window) -> dict[str, Any]:
        return {
            **_dump(window.rule, window.reading),
            "hits": list(window.hits),
            "fired": window.fired,
        }

    def _find(self, model: str, rule_id: str, device: DeviceRef) -> RuleSpec | None:
        rule = self._by_model.get(model, {}).get(rule_id)
        return None if rule is None else self.effective(rule, device)

    def _restore(self, state: dict[str, dict[str, Any]]) -> None:
        for section, target in (("hold", self._holds), ("confirm", self._pending)):
            for key, value in state.get(section, {}).items():
                reading = _load(value)
                rule = self._find(reading.device.model, value["rule"], reading.device)
                if rule is not None:
                    target[key] = (rule, reading)
        self._fired.update(state.get("fired", {}))
        for key, value in state.get("count", {}).items():
            reading = _load(value)
            rule = self._find(reading.device.model, value["rule"], reading.device)
            if rule is not None:
                self._windows[key] = _Window(rule, reading, deque(value["hits"]), value["fired"])
        self.places.restore(state)


def _dump(rule: RuleSpec, reading: Reading) -> dict[str, Any]:
    d = reading.device
    return {
        "rule": rule.id,
        "device": [d.device_id, d.model, d.category, d.community, d.building, d.unit],
        "fields": reading.fields,
        "at": reading.at.timestamp(),
    }


def _load(value: dict[str, Any]) -> Reading:
    device_id, model, category, community, building, unit = value["device"]
    at = datetime.fromtimestamp(value["at"], UTC)
    return Reading.model_construct(
        device=DeviceRef(device_id, model, category, community, building, unit),
        fields=value["fields"],
        at=at,
        received_at=at,
        time_source="gateway",
        seq=None,
    )
