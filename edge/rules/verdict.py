"""Verdicts: what a rule decided about a reading (conditions are evaluated in edge.rule_spec)."""

from __future__ import annotations

from typing import Literal, NamedTuple

from edge.model import Reading
from edge.rule_spec import RuleSpec, evaluate_condition

__all__ = ["Verdict", "evaluate_condition"]


class Verdict(NamedTuple):
    """A rule's decision about one reading.

    Immutable as a tuple: built for most messages (a routine report clears its alerts), where a
    frozen dataclass's `__init__` (one `object.__setattr__` a field) cost twice as much.
    """

    rule: RuleSpec
    action: Literal["raise", "clear"]
    reading: Reading
