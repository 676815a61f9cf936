"""The rule language's schema: conditions over canonical fields, and rules as written in YAML.

Rule kinds: `condition` (optionally held `for_seconds`), `offline` (liveness), `count` (hits in a
sliding window), `confirm` (two-stage: a suspicion raises unless withdrawn in time), and the
place kinds of the community rules file, `absence` (a household) and `correlation` (a building).

A condition is one of
    {field: NAME, eq|ne|gt|ge|lt|le|in: VALUE}   a comparison (exactly one operator)
    {field: NAME, present: true|false}          whether the message carries the field
    {all: [COND, ...]} / {any: [COND, ...]}     conjunction / disjunction
    {not: COND}                                 negation
Evaluation is three-valued: a comparison on a field the message does not carry is unknown, and an
unknown `when` neither raises nor clears anything. No `eval`, ever.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.model import FieldValue, Severity

_OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le", "in")


class Condition(BaseModel):
    """One node of a condition tree (see the module docstring)."""

    # YAML reads .nan and .inf: a rule comparing with NaN would never raise, and say nothing
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False
    )
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


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Schedule(BaseModel):
    """Active hours: `from`..`to` local time on `days` (`to` before `from` runs past midnight)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False
    )
    start: time = Field(alias="from")
    end: time = Field(alias="to")
    days: list[Day] = Field(default_factory=lambda: list(_DAYS), min_length=1)
    timezone: str | None = None  # None: the rules file's timezone (default UTC)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if isinstance(value, int):  # YAML 1.1 reads an unquoted 21:00 as the number 1260
            raise ValueError('write times quoted, "HH:MM" (YAML reads 21:00 unquoted as a number)')
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
        return value

    def opened_at(self, at: datetime, zone: ZoneInfo) -> datetime | None:
        """When the window holding `at` opened (UTC-aware), or None when `at` is outside it."""
        local = at.astimezone(self.zone(zone))
        for back in (0, 1):  # a window past midnight opened the day before
            day = local.date() - timedelta(days=back)
            opened = datetime.combine(day, self.start, tzinfo=local.tzinfo)
            length = datetime.combine(day, self.end, tzinfo=local.tzinfo) - opened
            if length <= timedelta(0):
                length += timedelta(days=1)
            if _DAYS[day.weekday()] in self.days and opened <= local < opened + length:
                return opened
        return None

    def zone(self, default: ZoneInfo) -> ZoneInfo:
        return ZoneInfo(self.timezone) if self.timezone is not None else default


class Signal(BaseModel):
    """Which messages a place rule watches: devices of some categories or models, and a condition."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    categories: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    when: Condition | None = None  # None: any message of those devices

    @model_validator(mode="after")
    def _some_device(self) -> Signal:
        if not self.categories and not self.models:
            raise ValueError(f"signal {self.name!r} needs 'categories' or 'models'")
        return self


class Rhythm(BaseModel):
    """Absence: the resident's own day, learned from the signals of the last `learn_days` days.

    An hour belongs to her day when a signal came in it on at least `active_share` of the days
    learned; inactivity then counts only inside her day (within the rule's `window`), carried from
    the end of one of her days to the start of the next (the night never counts), and a whole
    day of hers without a signal raises at its end. With `usual_share` the household is watched
    only when a signal came on at least that share of days (a home that usually uses water).
    Until `min_days` days are learned the rule's `window` applies as it is (and a `usual_share`
    rule watches nothing yet).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    learn_days: int = Field(default=28, ge=7, le=90)
    min_days: int = Field(default=7, ge=1, le=90)
    active_share: float = Field(default=0.25, gt=0, le=1)
    usual_share: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _learnable(self) -> Rhythm:
        if self.min_days > self.learn_days:
            raise ValueError("min_days cannot be more than learn_days")
        return self


Kind = Literal["condition", "offline", "count", "confirm", "absence", "correlation"]
PLACE_KINDS = frozenset({"absence", "correlation"})

# the keys each kind takes beyond id, kind, summary, summary_zh, severity, enabled
_KEYS: dict[str, frozenset[str]] = {
    "condition": frozenset({"when", "clear", "for_seconds", "schedule", "supersedes"}),
    "offline": frozenset(),
    "count": frozenset(
        {"when", "clear", "at_least", "within_seconds", "group_by", "schedule", "supersedes"}
    ),
    "confirm": frozenset(
        {"when", "confirm", "withdraw", "clear", "within_seconds", "schedule", "supersedes"}
    ),
    "absence": frozenset({"signals", "quiet_hours", "window", "households", "category", "rhythm"}),
    "correlation": frozenset({"signals", "within_seconds", "min_devices", "all_of", "category"}),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "condition": ("when",),
    "count": ("when", "at_least", "within_seconds"),
    "confirm": ("when", "within_seconds"),
    "absence": ("signals", "quiet_hours", "window", "households"),
    "correlation": ("signals", "within_seconds"),
}
_OPTIONAL = ("when", "clear", "for_seconds", "schedule", "at_least", "within_seconds", "group_by",
             "confirm", "withdraw", "signals", "quiet_hours", "window", "households", "min_devices",
             "all_of", "category", "rhythm", "supersedes")  # fmt: skip


class RuleSpec(BaseModel):
    """A rule as written in a device profile's `rules:` list or the community rules file."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    kind: Kind = "condition"
    summary: str
    # the summary in Simplified Chinese, shown on Chinese pages (the console); None: `summary`
    summary_zh: str | None = Field(default=None, min_length=1)
    severity: Severity
    enabled: bool = True
    when: Condition | None = None  # condition: raises; count: a hit; confirm: the suspicion
    clear: Condition | None = (
        None  # absent: only a person resolves the alert (events: SOS, forced door)
    )
    for_seconds: float | None = Field(default=None, gt=0)  # condition: `when` held this long
    schedule: Schedule | None = None  # raises only within these hours
    at_least: int | None = Field(default=None, ge=1)  # count: hits ...
    within_seconds: float | None = Field(default=None, gt=0)  # ... in this sliding window
    group_by: str | None = None  # count: counted apart per value of this field (the door)
    confirm: Condition | None = None  # confirm: raises at once (a confirmed fall)
    withdraw: Condition | None = None  # confirm: cancels a pending suspicion
    signals: list[Signal] | None = Field(default=None, min_length=1)
    quiet_hours: float | None = Field(default=None, gt=0)  # absence
    window: Schedule | None = None  # absence: the daily hours inactivity counts in
    # absence: "c/b/unit", all, or those whose household record says living alone
    households: list[str] | Literal["all", "living_alone"] | None = None
    rhythm: Rhythm | None = None  # absence: learn each resident's own day
    min_devices: int | None = Field(default=None, ge=2)  # correlation: distinct devices
    all_of: list[str] | None = Field(default=None, min_length=2)  # correlation: these signals
    category: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")  # a place's alert
    # rules of the same model whose open alert on the device this one's raising closes, with a
    # link to it (`superseded_by`): a confirmed fall supersedes the possible fall
    supersedes: list[str] | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _no_null_conditions(cls, data: Any) -> Any:
        if isinstance(data, dict) and "when" in data and data["when"] is None:
            raise ValueError("'when' must be a condition")
        return data

    @model_validator(mode="after")
    def _kind_fits(self) -> RuleSpec:
        if self.kind == "offline" and (self.when is not None or self.clear is not None):
            raise ValueError(
                f"offline rule {self.id!r} takes no 'when' or 'clear': the model's "
                "heartbeat_seconds raise it and the next message clears it"
            )
        allowed = _KEYS[self.kind]
        for key in _OPTIONAL:
            if getattr(self, key) is not None and key not in allowed:
                raise ValueError(f"a {self.kind} rule ({self.id!r}) takes no {key!r}")
        for key in _REQUIRED.get(self.kind, ()):
            if getattr(self, key) is None:
                if key == "when":
                    raise ValueError(f"rule {self.id!r} needs a 'when' condition")
                raise ValueError(f"{self.kind} rule {self.id!r} needs {key!r}")
        if self.supersedes is not None and self.id in self.supersedes:
            raise ValueError(f"rule {self.id!r} cannot supersede itself")
        if self.kind == "correlation":
            self._check_correlation()
        if self.kind == "absence" and isinstance(self.households, list):
            for place in self.households:
                if place.count("/") != 2 or not all(place.split("/")):
                    raise ValueError(f"household {place!r} must be 'community/building/unit'")
        self._life_safety()
        return self

    def _check_correlation(self) -> None:
        names = [s.name for s in self.signals or ()]
        if self.min_devices is None and self.all_of is None:
            raise ValueError(f"correlation rule {self.id!r} needs 'min_devices' or 'all_of'")
        unknown = sorted(set(self.all_of or ()) - set(names))
        if unknown:
            raise ValueError(f"all_of names unknown signals: {', '.join(unknown)}")

    def _life_safety(self) -> None:
        """A critical rule raises on the message that meets it: never held, counted or scheduled."""
        if self.severity != Severity.CRITICAL or self.kind in PLACE_KINDS:
            return
        why = "life-safety (critical) alerts are never delayed, debounced or switched off"
        if self.for_seconds is not None:
            raise ValueError(f"critical rule {self.id!r} cannot be held (for_seconds): {why}")
        if self.schedule is not None:
            raise ValueError(f"critical rule {self.id!r} cannot have a schedule: {why}")
        if self.kind == "count":
            raise ValueError(f"critical rule {self.id!r} cannot be a count: {why}")
        if not self.enabled:
            raise ValueError(f"critical rule {self.id!r} cannot be disabled: {why}")
        if self.kind == "confirm" and self.confirm is None:
            raise ValueError(
                f"critical confirm rule {self.id!r} needs 'confirm': a confirmed event raises at "
                "once, only a suspicion waits"
            )

    def fields(self) -> set[str]:
        """Every field name the rule's conditions read (device rules only)."""
        used: set[str] = set()
        for condition in (self.when, self.clear, self.confirm, self.withdraw):
            if condition is not None:
                used |= condition.fields()
        if self.group_by is not None:
            used.add(self.group_by)
        return used


def evaluate_condition(condition: Condition, fields: dict[str, FieldValue]) -> bool | None:
    """True, False, or None when the message does not carry what the condition reads.

    The reference: what the engine runs per message is `compile_condition`'s closure.
    """
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


Test = Callable[[dict[str, FieldValue]], bool | None]
_NOT_A_NUMBER = (bool, str)


def compile_condition(condition: Condition) -> Test:
    """The condition as one closure: `evaluate_condition`'s answer without walking the tree
    per message (the node's form is decided here, once per rule, not per reading)."""
    name = condition.field
    if name is not None:
        if condition.present is not None:
            return _present(name, condition.present)
        return _comparison(condition, name)
    if condition.all is not None:
        return _all(tuple(compile_condition(c) for c in condition.all))
    if condition.any is not None:
        return _any(tuple(compile_condition(c) for c in condition.any))
    assert condition.not_ is not None
    return _not(compile_condition(condition.not_))


def _present(name: str, present: bool) -> Test:
    if present:
        return lambda fields: name in fields
    return lambda fields: name not in fields


def _comparison(condition: Condition, name: str) -> Test:
    if condition.eq is not None:
        return _equal(name, condition.eq)
    if condition.ne is not None:
        equal = _equal(name, condition.ne)

        def ne(fields: dict[str, FieldValue]) -> bool | None:
            result = equal(fields)
            return None if result is None else not result

        return ne
    if condition.in_ is not None:
        options = tuple(condition.in_)

        def in_(fields: dict[str, FieldValue]) -> bool | None:
            value = fields.get(name)
            if value is None:
                return None
            return any(_same(value, option) for option in options)

        return in_
    # ordering needs a number: a boolean or a string is never above or below one
    if condition.gt is not None:
        gt = condition.gt

        def above(fields: dict[str, FieldValue]) -> bool | None:
            value = fields.get(name)
            if value is None:
                return None
            return not isinstance(value, _NOT_A_NUMBER) and value > gt

        return above
    if condition.ge is not None:
        ge = condition.ge

        def at_least(fields: dict[str, FieldValue]) -> bool | None:
            value = fields.get(name)
            if value is None:
                return None
            return not isinstance(value, _NOT_A_NUMBER) and value >= ge

        return at_least
    if condition.lt is not None:
        lt = condition.lt

        def below(fields: dict[str, FieldValue]) -> bool | None:
            value = fields.get(name)
            if value is None:
                return None
            return not isinstance(value, _NOT_A_NUMBER) and value < lt

        return below
    le = condition.le
    assert le is not None

    def at_most(fields: dict[str, FieldValue]) -> bool | None:
        value = fields.get(name)
        if value is None:
            return None
        return not isinstance(value, _NOT_A_NUMBER) and value <= le

    return at_most


def _equal(name: str, expected: FieldValue) -> Test:
    # `_same`, specialised by the expected value's type
    if isinstance(expected, bool):

        def is_flag(fields: dict[str, FieldValue]) -> bool | None:
            value = fields.get(name)
            if value is None:
                return None
            return value is expected  # True and False are singletons

        return is_flag
    if isinstance(expected, str):

        def is_text(fields: dict[str, FieldValue]) -> bool | None:
            value = fields.get(name)
            if value is None:
                return None
            return value == expected  # a number or a boolean never equals a string

        return is_text

    def is_number(fields: dict[str, FieldValue]) -> bool | None:
        value = fields.get(name)
        if value is None:
            return None
        return value == expected and not isinstance(value, bool)

    return is_number


def _all(tests: tuple[Test, ...]) -> Test:
    def all_(fields: dict[str, FieldValue]) -> bool | None:
        unknown = False
        for test in tests:
            result = test(fields)
            if result is False:
                return False
            if result is None:
                unknown = True
        return None if unknown else True

    return all_


def _any(tests: tuple[Test, ...]) -> Test:
    def any_(fields: dict[str, FieldValue]) -> bool | None:
        unknown = False
        for test in tests:
            result = test(fields)
            if result is True:
                return True
            if result is None:
                unknown = True
        return None if unknown else False

    return any_


def _not(test: Test) -> Test:
    def not_(fields: dict[str, FieldValue]) -> bool | None:
        result = test(fields)
        return None if result is None else not result

    return not_
