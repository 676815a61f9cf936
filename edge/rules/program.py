"""Rules compiled for the engine: each rule's conditions as closures (edge.rule_spec's
`compile_condition`), and a model's rules dispatched by what a reading can meet, so that a
message runs only the rules that can decide something about it, in the rules' order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edge.model import FieldValue
from edge.rule_spec import Condition, RuleSpec, Test, compile_condition

# how the engine runs a rule: raised or cleared by the message alone, held (for_seconds or a
# schedule), counted in a window, or confirmed in two stages
SIMPLE, HELD, COUNT, CONFIRM = range(4)


def _mode(rule: RuleSpec) -> int:
    if rule.kind == "count":
        return COUNT
    if rule.kind == "confirm":
        return CONFIRM
    return HELD if rule.for_seconds is not None or rule.schedule is not None else SIMPLE


def _never(fields: dict[str, FieldValue]) -> bool | None:
    return None


def _test(condition: Condition | None) -> Test | None:
    return None if condition is None else compile_condition(condition)


@dataclass(frozen=True, slots=True)
class Program:
    """A rule as the engine runs it: its mode, and its conditions compiled once instead of walked
    per message (a rule without `when` is an offline rule, which the engine never runs)."""

    rule: RuleSpec
    mode: int
    when: Test
    clear: Test | None
    confirm: Test | None
    withdraw: Test | None

    @classmethod
    def of(cls, rule: RuleSpec) -> Program:
        return cls(
            rule,
            _mode(rule),
            _test(rule.when) or _never,
            _test(rule.clear),
            _test(rule.confirm),
            _test(rule.withdraw),
        )


def _keyed(program: Program, overridden: Mapping[str, object]) -> tuple[str, str] | None:
    """(field, text) when the program does something only for a reading whose field holds that
    text: a plain or count rule raising on `{field: F, eq: "text"}` with no clear, and no
    override that could make it a held rule (which acts on a reading that does not meet it)."""
    when = program.rule.when
    if (
        program.mode not in (SIMPLE, COUNT)
        or program.clear is not None
        or program.rule.id in overridden
        or when is None
        or when.field is None
        or not isinstance(when.eq, str)
    ):
        return None
    return when.field, when.eq


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A model's programs by what a reading can meet: a reading whose `field` holds a text runs
    `by_value[text]`, any other reading `others` (the programs no single text decides), both in
    the rules' order. An access controller's six rules on `event` cost a dict lookup."""

    field: str | None
    by_value: dict[FieldValue | None, tuple[Program, ...]]
    others: tuple[Program, ...]

    @classmethod
    def of(cls, programs: Iterable[Program], overridden: Mapping[str, object]) -> Dispatch:
        keyed = [(p, _keyed(p, overridden)) for p in programs]
        fields = Counter(key[0] for _, key in keyed if key is not None)
        if not fields:
            return cls(None, {}, tuple(p for p, _ in keyed))
        field = fields.most_common(1)[0][0]
        texts = {key[1] for _, key in keyed if key is not None and key[0] == field}
        by_value: dict[FieldValue | None, tuple[Program, ...]] = {
            text: tuple(p for p, key in keyed if key is None or key[0] != field or key[1] == text)
            for text in texts
        }
        others = tuple(p for p, key in keyed if key is None or key[0] != field)
        return cls(field, by_value, others)
