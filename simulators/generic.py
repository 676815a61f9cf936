"""Payloads for any JSON profile without a hand-written body, built from its own field specs.

Values are drawn in canonical terms (within minimum/maximum, mapped enum values, booleans) and
encoded back into what the device sends: vendor codes, inverted booleans, unscaled raw numbers.
A routine report satisfies none of the profile's rules; an alarm satisfies one rule's `when`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from edge.decode import DeviceProfile, FieldSpec
from edge.model import FieldValue
from edge.rule_spec import Condition, RuleSpec, evaluate_condition

_log = logging.getLogger(__name__)

_TRIES = 200  # random candidates tried before settling for the last one
_REDRAWS = 10  # draws for a path read by several fields until every one of them accepts it
_SPAN = 100.0  # the range of a numeric field with no minimum or maximum (or only one of them)
_UNMAPPED = "unmapped"  # a vendor code outside the map: decodes to the field's `default`

_ABSENT = object()  # a path the payload leaves out


class GenericPayloads:
    """Routine reports and rule-raising alarms for one profile, from its field specs alone."""

    def __init__(self, profile: DeviceProfile) -> None:
        self.profile = profile
        self._constants = _constants(profile)
        # fields that read the same path (Hikvision's subEventType as an enum and as a number)
        # share one raw value: it is drawn for one of them and decoded by all
        self._paths: dict[str, list[FieldSpec]] = {}
        for spec in profile.fields:
            self._paths.setdefault(_path(spec), []).append(spec)
        self.battery = next(
            (f for f in profile.fields if f.name == "battery" and f.type in ("int", "float")),
            None,
        )
        # the rules a payload can raise, found once with a fixed seed so every device agrees
        probe = random.Random(f"generic:{profile.name}")
        self.rules = [r for r in profile.rules if r.when is not None]  # not offline rules
        self.alarms: tuple[RuleSpec, ...] = tuple(
            rule for rule in self.rules if self._search(probe, _raising(rule)) is not None
        )

    def body(
        self, rng: random.Random, *, alarm: bool = False, battery: float | None = None
    ) -> dict[str, Any]:
        """The next payload without ts/seq; `alarm` raises one of `self.alarms` at random.

        Args:
            battery: the device's charge in percent, reported in the `battery` field if any.
        """
        pinned: dict[str, Any] = {}
        if battery is not None and self.battery is not None:
            raw = _encode_number(self.battery, _clamp(self.battery, battery))
            if raw is not None:
                pinned[_path(self.battery)] = raw
        # the battery is what the device says it is: rules on it are neither met nor avoided
        free = [r for r in self.rules if not (pinned and self._reads_battery(r))]
        aims = [_quiet(self.rules), _quiet(free)]
        if alarm and self.alarms:
            aims = [_raising(rng.choice([r for r in self.alarms if r in free] or self.alarms))]
        for wanted in [*aims, _anything]:
            values = self._search(rng, wanted, pinned)
            if values is not None:
                break
            # no candidate met the aim (a low battery, or an alarm on the battery itself)
            _log.debug("%s: no payload found for alarm=%s", self.profile.name, alarm)
        assert values is not None
        return self._document(values)

    def _reads_battery(self, rule: RuleSpec) -> bool:
        return self.battery is not None and self.battery.name in rule.fields()

    def _search(
        self,
        rng: random.Random,
        wanted: Callable[[dict[str, FieldValue]], bool],
        pinned: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Raw values by path whose decoded fields are `wanted`, or None after `_TRIES`."""
        for _ in range(_TRIES):
            values: dict[str, Any] = {}
            fields: dict[str, FieldValue] = {}
            for path, specs in self._paths.items():
                if pinned and path in pinned:
                    raw = pinned[path]
                else:
                    raw = self._draw(rng, rng.choice(specs))
                decoded = [_decode(spec, raw) for spec in specs]
                for _ in range(_REDRAWS):  # one reading of the path refused it: draw again
                    if raw is _ABSENT or None not in decoded:
                        break
                    raw = self._draw(rng, rng.choice(specs))
                    decoded = [_decode(spec, raw) for spec in specs]
                values[path] = raw
                for spec, value in zip(specs, decoded, strict=True):
                    if value is not None:
                        fields[spec.name] = value
            if fields and wanted(fields):
                return values
        return None

    def _draw(self, rng: random.Random, spec: FieldSpec) -> Any:
        """A raw value for `spec`; half the time one of the constants its rules compare to."""
        if not spec.required and spec.name in self._constants.absent and rng.random() < 0.3:
            return _ABSENT
        constants = self._constants.values.get(spec.name, [])
        if constants and rng.random() < 0.5:
            encoded = _encode(spec, rng, rng.choice(constants))
            if encoded is not None:
                return encoded
        if spec.type == "bool":
            return _encode(spec, rng, rng.random() < 0.5)
        if spec.type == "enum":
            assert spec.map is not None
            canonical = sorted(set(spec.map.values()))
            if spec.default is not None:
                canonical.append(spec.default)
            return _encode(spec, rng, rng.choice(canonical))
        if spec.type == "str":
            return f"{spec.name}-{rng.randrange(1000)}"
        low, high = _bounds(spec)
        number = rng.randint(int(low), int(high)) if spec.type == "int" else rng.uniform(low, high)
        raw = _encode_number(spec, number)
        return _encode_number(spec, (low + high) / 2) if raw is None else raw

    def _document(self, values: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for path, raw in values.items():
            if raw is not _ABSENT:
                _set(body, path, raw)
        # envelopes for the device time and counter, which SimulatedDevice stamps
        for stamped in (self.profile.timestamp, self.profile.sequence):
            if stamped is not None:
                _set(body, stamped.path, 0, overwrite=False)
        return body


def _raising(rule: RuleSpec) -> Callable[[dict[str, FieldValue]], bool]:
    when = rule.when
    return lambda fields: when is not None and evaluate_condition(when, fields) is True


def _anything(fields: dict[str, FieldValue]) -> bool:
    return True


def _quiet(rules: list[RuleSpec]) -> Callable[[dict[str, FieldValue]], bool]:
    return lambda fields: (
        not any(
            rule.when is not None and evaluate_condition(rule.when, fields) is True
            for rule in rules
        )
    )


class _Constants:
    """What the profile's rules compare each field to, and which fields they test for presence."""

    def __init__(self) -> None:
        self.values: dict[str, list[FieldValue]] = {}
        self.absent: set[str] = set()


def _constants(profile: DeviceProfile) -> _Constants:
    found = _Constants()
    specs = {spec.name: spec for spec in profile.fields}

    def visit(condition: Condition) -> None:
        name = condition.field
        if name is not None:
            out = found.values.setdefault(name, [])
            if condition.present is not None:
                found.absent.add(name)
            for value in (condition.eq, condition.ne, *(condition.in_ or ())):
                if value is not None:
                    out.append(value)
            step = 1.0 if specs[name].type == "int" else 0.5
            for bound in (condition.gt, condition.ge, condition.lt, condition.le):
                if bound is not None:
                    out.extend((bound - step, bound, bound + step))
        for child in (*(condition.all or ()), *(condition.any or ())):
            visit(child)
        if condition.not_ is not None:
            visit(condition.not_)

    for rule in profile.rules:
        if rule.when is not None:
            visit(rule.when)
        if rule.clear is not None:
            visit(rule.clear)
    return found


def _encode(spec: FieldSpec, rng: random.Random, canonical: FieldValue) -> Any | None:
    """What the device sends for `canonical`, or None when `spec` cannot carry it."""
    if spec.type == "bool":
        return canonical != spec.invert if isinstance(canonical, bool) else None
    if spec.type == "enum":
        assert spec.map is not None
        codes = sorted(code for code, value in spec.map.items() if value == canonical)
        if codes:
            code = rng.choice(codes)
            # numeric vendor codes (Hikvision's minor event types) go out as JSON numbers
            return int(code) if code.isdigit() else code
        if spec.default is not None and canonical == spec.default:
            if all(code.isdigit() for code in spec.map):  # a numeric code nobody mapped
                return next(n for n in range(len(spec.map) + 1) if str(n) not in spec.map)
            return _UNMAPPED if _UNMAPPED not in spec.map else None
        return None
    if spec.type == "str":
        return canonical if isinstance(canonical, str) else None
    if isinstance(canonical, bool) or not isinstance(canonical, int | float):
        return None
    return _encode_number(spec, float(canonical))


def _encode_number(spec: FieldSpec, canonical: float) -> int | float | None:
    """The raw number whose scaled value (as the agent computes it) is `canonical`, in range."""
    raw = (canonical - spec.offset) / spec.scale
    for candidate in (round(raw), round(raw, 3)):
        if _decode(spec, candidate) is not None and (
            spec.type == "int" or abs(candidate * spec.scale + spec.offset - canonical) <= 1.0
        ):
            return int(candidate) if candidate == int(candidate) else candidate
    return None


def _decode(spec: FieldSpec, raw: Any) -> FieldValue | None:
    """What the agent reads `raw` as (a copy of its rules, for choosing values); None: refused."""
    if raw is _ABSENT or raw is None:
        return None
    if spec.type == "bool":
        return raw != spec.invert if isinstance(raw, bool) else None
    if spec.type == "enum":
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            return None
        assert spec.map is not None
        return spec.map.get(str(raw), spec.default)
    if spec.type == "str":
        return raw if isinstance(raw, str) else None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    number = raw * spec.scale + spec.offset
    if (spec.minimum is not None and number < spec.minimum) or (
        spec.maximum is not None and number > spec.maximum
    ):
        return None
    if spec.type == "int":
        return int(number) if number == int(number) else None
    return float(number)


def _bounds(spec: FieldSpec) -> tuple[float, float]:
    low, high = spec.minimum, spec.maximum
    if low is None and high is None:
        return 0.0, _SPAN
    if low is None:
        assert high is not None
        return high - _SPAN, high
    if high is None:
        return low, low + _SPAN
    return low, high


def _clamp(spec: FieldSpec, value: float) -> float:
    low, high = _bounds(spec)
    return min(max(value, low), high)


def _set(body: dict[str, Any], path: str, value: Any, *, overwrite: bool = True) -> None:
    node = body
    *parents, leaf = path.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    if overwrite or leaf not in node:
        node[leaf] = value


def _path(spec: FieldSpec) -> str:
    """Where a JSON field sits (only JSON profiles are simulated from their specs)."""
    if spec.path is None:
        raise ValueError(f"field {spec.name!r} has no JSON path (a frame field)")
    return spec.path
