"""Which rule fired and why, for an alert's page: the rule's conditions in plain words, and each
comparison checked against the reading that raised the alert (its values beside the thresholds).
Pure over a rule and a reading's fields, so it is tested without an agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.model import FieldValue
from edge.rule_spec import Condition, RuleSpec, evaluate_condition
from gateway.console.catalogue import Lang

_SYMBOLS = {"eq": "=", "ne": "≠", "gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
_JOIN = {
    "zh": {"all": " 且 ", "any": " 或 ", "not": "非"},
    "en": {"all": " and ", "any": " or ", "not": "not "},
}
_PRESENT = {"zh": ("带有 {f}", "不带 {f}"), "en": ("carries {f}", "does not carry {f}")}


@dataclass(frozen=True, slots=True)
class Check:
    """One comparison of the rule against the reading: the value seen and whether it held."""

    text: str  # "battery < 20"
    seen: FieldValue | None  # the reading's value (None: not in the message)
    held: bool | None  # None: the message did not carry the field

    @property
    def seen_text(self) -> str:
        """The value as the rule's text writes it (`true`, `15`, `emergency`)."""
        return "" if self.seen is None else _value(self.seen)


@dataclass(frozen=True, slots=True)
class Trace:
    """What an alert's page says about the rule behind it."""

    rule_id: str
    kind: str
    when: str | None  # the raising condition in words
    clear: str | None  # the clearing condition in words; None: a person resolves it
    details: list[tuple[str, str]] = field(default_factory=list)  # (catalogue key, value)
    checks: list[Check] = field(default_factory=list)  # against the reading, if one is known
    met: bool | None = None  # the raising condition on that reading


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _comparison(condition: Condition, lang: Lang) -> str:
    name = condition.field or "?"
    if condition.present is not None:
        return _PRESENT[lang][0 if condition.present else 1].format(f=name)
    if condition.in_ is not None:
        return f"{name} ∈ {{{', '.join(_value(v) for v in condition.in_)}}}"
    for op, symbol in _SYMBOLS.items():
        operand = getattr(condition, op)
        if operand is not None:
            return f"{name} {symbol} {_value(operand)}"
    return name


def describe(condition: Condition, lang: Lang, nested: bool = False) -> str:
    """A condition as a person reads it: `battery < 20 或 battery_low = true`."""
    if condition.field is not None:
        return _comparison(condition, lang)
    words = _JOIN[lang]
    if condition.not_ is not None:
        return f"{words['not']}({describe(condition.not_, lang)})"
    group = "all" if condition.all is not None else "any"
    parts = [describe(c, lang, nested=True) for c in (condition.all or condition.any or [])]
    text = words[group].join(parts)
    return f"({text})" if nested and len(parts) > 1 else text


def _comparisons(condition: Condition) -> list[Condition]:
    if condition.field is not None:
        return [condition]
    children = [*(condition.all or []), *(condition.any or [])]
    if condition.not_ is not None:
        children.append(condition.not_)
    return [leaf for child in children for leaf in _comparisons(child)]


def trace(
    rule: RuleSpec, fields: dict[str, FieldValue] | None, lang: Lang, heartbeat_s: int | None = None
) -> Trace:
    """The rule in words, checked against `fields` (the reading that raised the alert) if known."""
    raising = rule.confirm if rule.kind == "confirm" and rule.confirm is not None else rule.when
    details: list[tuple[str, str]] = []
    if rule.for_seconds is not None:
        details.append(("tr_for", f"{rule.for_seconds:g} s"))
    if rule.at_least is not None and rule.within_seconds is not None:
        details.append(("tr_count", f"≥ {rule.at_least} / {rule.within_seconds:g} s"))
    elif rule.within_seconds is not None:
        details.append(("tr_within", f"{rule.within_seconds:g} s"))
    if rule.kind == "confirm" and rule.when is not None:
        details.append(("tr_suspicion", describe(rule.when, lang)))
    if rule.kind == "offline" and heartbeat_s is not None:
        details.append(("tr_heartbeat", f"{heartbeat_s} s"))
    if rule.quiet_hours is not None:
        details.append(("tr_quiet", f"{rule.quiet_hours:g} h"))
    if rule.min_devices is not None:
        details.append(("tr_devices", f"≥ {rule.min_devices}"))
    if rule.signals:
        details.append(("tr_signals", ", ".join(s.name for s in rule.signals)))
    if rule.schedule is not None:
        details.append(("tr_schedule", f"{rule.schedule.start:%H:%M}-{rule.schedule.end:%H:%M}"))
    checks: list[Check] = []
    met: bool | None = None
    if raising is not None and fields is not None:
        met = evaluate_condition(raising, fields)
        checks = [
            Check(_comparison(c, lang), fields.get(c.field or ""), evaluate_condition(c, fields))
            for c in _comparisons(raising)
        ]
    return Trace(
        rule_id=rule.id,
        kind=rule.kind,
        when=describe(raising, lang) if raising is not None else None,
        clear=describe(rule.clear, lang) if rule.clear is not None else None,
        details=details,
        checks=checks,
        met=met,
    )
