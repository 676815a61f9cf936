"""Verdicts: what a rule decided about a reading (conditions are evaluated in edge.rule_spec)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge.model import Reading
from edge.rule_spec import RuleSpec, evaluate_condition

__all__ = ["Verdict", "evaluate_condition"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A rule's decision about one reading."""

    rule: RuleSpec
    action: Literal["raise", "clear"]
    reading: Reading
