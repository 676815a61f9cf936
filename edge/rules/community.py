"""The community rules file: household and building rules, and overrides per community, building,
unit or device. YAML, validated like a profile; a problem names file, line and key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edge.decode import Problem, ProfileRegistry, default_profile_dir
from edge.errors import RuleError
from edge.identifier import Identifier
from edge.model import Severity
from edge.rule_spec import PLACE_KINDS, RuleSpec, Schedule
from edge.yaml_file import line_of

# what an override may change; anything else is a new rule, not an override
_SETTABLE = ("severity", "enabled", "schedule", "for_seconds", "at_least", "within_seconds",
             "quiet_hours", "window", "min_devices", "summary", "summary_zh")  # fmt: skip


class Override(BaseModel):
    """Changes to one rule where the match holds; the most specific match wins per key."""

    # YAML reads .inf: `for_seconds: .inf` would pass `gt=0` and the rule would never raise
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    rule: str
    model: str | None = None
    # where it holds: ids as topics and the registry name them (edge.identifier), so a typo
    # such as a building's name in Chinese is refused, not an override that never matches
    community: Identifier | None = None
    building: Identifier | None = None
    unit: Identifier | None = None
    device: Identifier | None = None
    summary: str | None = None
    summary_zh: str | None = None
    severity: Severity | None = None
    enabled: bool | None = None
    schedule: Schedule | None = None
    for_seconds: float | None = Field(default=None, gt=0)
    at_least: int | None = Field(default=None, ge=1)
    within_seconds: float | None = Field(default=None, gt=0)
    quiet_hours: float | None = Field(default=None, gt=0)
    window: Schedule | None = None
    min_devices: int | None = Field(default=None, ge=2)

    @property
    def specificity(self) -> int:
        """device > unit > building > community > everywhere."""
        return (
            (8 if self.device else 0)
            + (4 if self.unit else 0)
            + (2 if self.building else 0)
            + (1 if self.community else 0)
        )

    def changes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _SETTABLE if getattr(self, k) is not None}

    def matches(
        self, model: str, community: str, building: str, unit: str | None, device: str | None
    ) -> bool:
        return (
            (self.model is None or self.model == model)
            and (self.community is None or self.community == community)
            and (self.building is None or self.building == building)
            and (self.unit is None or self.unit == unit)
            and (self.device is None or self.device == device)
        )


class RulesFile(BaseModel):
    """The file's top level."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    timezone: str = "UTC"  # schedules and daily windows without their own zone
    rules: list[RuleSpec] = Field(default_factory=list)  # absence and correlation rules
    overrides: list[Override] = Field(default_factory=list)
    away: list[str] = Field(default_factory=list)  # households away ("c/b/unit"); see the API

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        Schedule.model_validate({"from": "00:00", "to": "00:00", "timezone": value})
        return value


@dataclass(frozen=True)
class CommunityRules:
    """A checked rules file: place rules, overrides resolved against the profiles' rules."""

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    rules: tuple[RuleSpec, ...] = ()
    overrides: tuple[Override, ...] = ()
    away: tuple[str, ...] = ()
    source: Path | None = None


def default_rules_file() -> Path:
    """The shipped community rules (confirmed fire; absence for listed households only)."""
    return default_profile_dir() / "community" / "default-rules.yaml"


def load_rules_file(path: Path, profiles: ProfileRegistry) -> CommunityRules:
    """Load and check a rules file; raises RuleError naming every problem (file:line: key: msg)."""
    problems = check_rules_file(path, profiles)
    if isinstance(problems, CommunityRules):
        return problems
    raise RuleError("; ".join(str(p) for p in problems))


def check_rules_file(path: Path, profiles: ProfileRegistry) -> CommunityRules | list[Problem]:
    """The checked rules, or every problem found."""
    try:
        text = path.read_text(encoding="utf-8")
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else {}
        finally:
            loader.dispose()
    except OSError as exc:
        return [Problem(path, None, "", f"cannot read: {exc.strerror or exc}")]
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return [Problem(path, None, "", f"not valid YAML: {' '.join(str(exc).split())}")]
    if not isinstance(data, dict) or node is None:
        return [Problem(path, 1, "", "expected a mapping at the top level")]
    try:
        spec = RulesFile.model_validate(data)
    except ValidationError as exc:
        return [
            Problem(path, line_of(node, err["loc"]), _key(err["loc"]), err["msg"])
            for err in exc.errors()
        ]
    problems: list[Problem] = []

    def problem(loc: tuple[str | int, ...], message: str) -> None:
        problems.append(Problem(path, line_of(node, loc), _key(loc), message))

    ids = [r.id for r in spec.rules]
    for index, rule in enumerate(spec.rules):
        if rule.kind not in PLACE_KINDS:
            problem(("rules", index, "kind"), "device rules belong in a device profile")
        if rule.id in ids[:index]:
            problem(("rules", index, "id"), f"rule id {rule.id!r} used twice")
    for index, override in enumerate(spec.overrides):
        targets = [r for r in _targets(override, profiles) if r.id == override.rule]
        targets += [r for r in spec.rules if r.id == override.rule and override.model is None]
        if not targets:
            where = f" of model {override.model!r}" if override.model else ""
            problem(("overrides", index, "rule"), f"no rule {override.rule!r}{where} to override")
        for rule in targets:
            message = override_problem(rule, override)
            if message is not None:
                problem(("overrides", index), message)
    for index, place in enumerate(spec.away):
        if place.count("/") != 2 or not all(place.split("/")):
            problem(("away", index), f"household {place!r} must be 'community/building/unit'")
    if problems:
        return problems
    return CommunityRules(
        ZoneInfo(spec.timezone),
        tuple(spec.rules),
        tuple(spec.overrides),
        tuple(spec.away),
        path,
    )


def _targets(override: Override, profiles: ProfileRegistry) -> Iterable[RuleSpec]:
    for profile in profiles:
        if override.model is None or profile.name == override.model:
            yield from profile.rules


def apply_override(rule: RuleSpec, override: Override) -> RuleSpec:
    """The rule with the override's changes, validated again (life-safety included)."""
    data = rule.model_dump(by_alias=True, exclude_none=True)
    data.update(
        {
            k: v.model_dump(by_alias=True, exclude_none=True) if isinstance(v, BaseModel) else v
            for k, v in override.changes().items()
        }
    )
    return RuleSpec.model_validate(data)


def override_problem(rule: RuleSpec, override: Override) -> str | None:
    """Why the override cannot apply to the rule, or None."""
    lowered = override.severity not in (None, Severity.CRITICAL)
    if rule.severity == Severity.CRITICAL and rule.kind not in PLACE_KINDS and lowered:
        return f"rule {rule.id!r} is critical (life safety): an override cannot lower its severity"
    try:
        apply_override(rule, override)
    except ValidationError as exc:
        return "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
    return None


def _key(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"
