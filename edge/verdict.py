"""Verdicts, and the three-valued evaluation of conditions they are decided by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge.model import FieldValue, Reading
from edge.rule_spec import Condition, RuleSpec


@dataclass(frozen=True, slots=True)
class Verdict:
    """A rule's decision about one reading."""

    rule: RuleSpec
    action: Literal["raise", "clear"]
    reading: Reading


def evaluate_condition(condition: Condition, fields: dict[str, FieldValue]) -> bool | None:
    """True, False, or None when the message does not carry what the condition reads."""
    if condition.field is not None:
        if condition.present is not None:
            return (condition.field in fields) == condition.present
        value = fields.get(condition.field)
        if value is None:
            return None
        return _compare(condition, value)
    if condition.all is not None:
        results = [evaluate_condition(c, fields) for c in condition.all]
        if False in results:
            return False
        return None if None in results else True
    if condition.any is not None:
        results = [evaluate_condition(c, fields) for c in condition.any]
        if True in results:
            return True
        return None if None in results else False
    assert condition.not_ is not None
    inner = evaluate_condition(condition.not_, fields)
    return None if inner is None else not inner


def _compare(condition: Condition, value: FieldValue) -> bool:
    if condition.eq is not None:
        return _same(value, condition.eq)
    if condition.ne is not None:
        return not _same(value, condition.ne)
    if condition.in_ is not None:
        return any(_same(value, option) for option in condition.in_)
    if isinstance(value, bool | str):
        return False  # ordering needs a number
    if condition.gt is not None:
        return value > condition.gt
    if condition.ge is not None:
        return value >= condition.ge
    if condition.lt is not None:
        return value < condition.lt
    assert condition.le is not None
    return value <= condition.le


def _same(value: FieldValue, expected: FieldValue) -> bool:
    # True == 1 in Python; a boolean field compared with a number is a profile mistake, not a match
    if isinstance(value, bool) != isinstance(expected, bool):
        return False
    return value == expected
