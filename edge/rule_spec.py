"""The rule language's schema: conditions over canonical fields, and rules as written in YAML.

A condition is one of
    {field: NAME, eq|ne|gt|ge|lt|le|in: VALUE}   a comparison (exactly one operator)
    {field: NAME, present: true|false}          whether the message carries the field
    {all: [COND, ...]} / {any: [COND, ...]}     conjunction / disjunction
    {not: COND}                                 negation
Evaluation is three-valued: a comparison on a field the message does not carry is unknown, and an
unknown `when` neither raises nor clears anything. No `eval`, ever.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.model import FieldValue, Severity

_OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le", "in")


class Condition(BaseModel):
    """One node of a condition tree (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    field: str | None = None
    eq: FieldValue | None = None
    ne: FieldValue | None = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    in_: list[FieldValue] | None = Field(default=None, alias="in")
    present: bool | None = None
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    not_: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        ops = [op for op in _OPERATORS if getattr(self, "in_" if op == "in" else op) is not None]
        if self.present is not None:
            ops.append("present")
        groups = [g for g in ("all", "any", "not_") if getattr(self, g) is not None]
        if self.field is not None:
            if groups:
                raise ValueError("a comparison cannot also hold all/any/not")
            if len(ops) != 1:
                raise ValueError(
                    f"field {self.field!r} needs exactly one of {', '.join(_OPERATORS)}, present"
                )
        else:
            if ops:
                raise ValueError(f"operator {ops[0]!r} needs a 'field'")
            if len(groups) != 1:
                raise ValueError("a condition needs a 'field' comparison or one of all/any/not")
            if (self.all is not None and not self.all) or (self.any is not None and not self.any):
                raise ValueError("all/any need at least one condition")
        return self

    def fields(self) -> set[str]:
        """Every field name the condition reads."""
        if self.field is not None:
            return {self.field}
        children = [*(self.all or []), *(self.any or []), *([self.not_] if self.not_ else [])]
        return set().union(*(c.fields() for c in children))


class RuleSpec(BaseModel):
    """A rule as written in a device profile's `rules:` list."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    # condition: `when` raises, `clear` resolves. offline: raised when the model's
    # heartbeat_seconds pass without a message, cleared by the next message (no when/clear)
    kind: Literal["condition", "offline"] = "condition"
    summary: str
    severity: Severity
    when: Condition | None = None
    clear: Condition | None = (
        None  # absent: only a person resolves the alert (events: SOS, forced door)
    )

    @model_validator(mode="before")
    @classmethod
    def _no_null_conditions(cls, data: Any) -> Any:
        if isinstance(data, dict) and "when" in data and data["when"] is None:
            raise ValueError("'when' must be a condition")
        return data

    @model_validator(mode="after")
    def _kind_fits(self) -> RuleSpec:
        if self.kind == "condition" and self.when is None:
            raise ValueError(f"rule {self.id!r} needs a 'when' condition")
        if self.kind == "offline" and (self.when is not None or self.clear is not None):
            raise ValueError(
                f"offline rule {self.id!r} takes no 'when' or 'clear': the model's "
                "heartbeat_seconds raise it and the next message clears it"
            )
        return self

    def fields(self) -> set[str]:
        """Every field name the rule's conditions read."""
        used: set[str] = set()
        for condition in (self.when, self.clear):
            if condition is not None:
                used |= condition.fields()
        return used
