"""Escalation policies: who is told of an unacknowledged alert, and when.

A policy (per severity, optionally per community and per alert category) is a list of steps counted from the alert's
opening, plus `repeat_every_s`. A step names whom it reaches: a `tier` of group channels (as
routes know them), a `person` of the roster, the person `on_duty` in a team, or the person
`next_on_roster` after them (a team id, or `here`: the teams answering for the alert's building,
then its community); a step may name a tier beside a person. A step at `after_s: 0` is the
`opened` event's own; each later step is an `escalated` event. After the last step the last one is
told again every `repeat_every_s` until someone acknowledges. A step that comes late (a silence
held it, the agent was down) fires once, and the steps after it keep their spacing from then. A
step that reaches nobody (`edge.alerts.reach`) says so and the next one is due at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.model import Alert, Severity

HERE = "here"  # on_duty / next_on_roster: the teams answering for the alert's own place


class EscalationStep(BaseModel):
    """One step: when (seconds after opening) and whom."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    after_s: float = Field(ge=0)
    tier: str | None = Field(default=None, min_length=1, max_length=64)
    person: str | None = Field(default=None, min_length=1, max_length=64)
    on_duty: str | None = Field(default=None, min_length=1, max_length=64)  # team id or "here"
    next_on_roster: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _names_someone(self) -> EscalationStep:
        people = [x for x in (self.person, self.on_duty, self.next_on_roster) if x is not None]
        if len(people) > 1:
            raise ValueError("a step names at most one of person, on_duty, next_on_roster")
        if not people and self.tier is None:
            raise ValueError("a step names a tier, a person, on_duty or next_on_roster")
        return self

    @property
    def names_people(self) -> bool:
        return (
            self.person is not None or self.on_duty is not None or self.next_on_roster is not None
        )

    def describe(self) -> str:
        """How the step reads in a policy listing: `on duty in garden-security`, `tier duty_officer`."""
        parts = []
        if self.person is not None:
            parts.append(f"person {self.person}")
        if self.on_duty is not None:
            parts.append(f"on duty in {self.on_duty}")
        if self.next_on_roster is not None:
            parts.append(f"next on the roster of {self.next_on_roster}")
        if self.tier is not None:
            parts.append(f"tier {self.tier}")
        return ", ".join(parts)


class EscalationPolicy(BaseModel):
    """The steps for one severity (and, when given, one community)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    severity: Severity
    community: str | None = None  # None: every community without a policy of its own
    # None: every category; "household": a household's sign-of-life alerts, which escalate
    # like an SOS through the same tiers, only slower
    category: str | None = None
    steps: tuple[EscalationStep, ...] = Field(min_length=1)
    repeat_every_s: float | None = Field(default=None, gt=0)  # None: no repeats after the last

    @model_validator(mode="after")
    def _ordered(self) -> EscalationPolicy:
        after = [s.after_s for s in self.steps]
        if after != sorted(after) or len(set(after)) != len(after):
            raise ValueError("steps must have increasing after_s")
        return self


class EscalationPolicies:
    """Finds the policy for an alert: its community's own first, then the severity's default."""

    def __init__(self, policies: Sequence[EscalationPolicy] = ()) -> None:
        self._policies: dict[tuple[Severity, str | None, str | None], EscalationPolicy] = {}
        for policy in policies:
            key = (policy.severity, policy.community, policy.category)
            if key in self._policies:
                raise ValueError(
                    f"two escalation policies for {policy.severity} in "
                    f"{policy.community or 'every community'}"
                    + (f" for {policy.category}" if policy.category else "")
                )
            self._policies[key] = policy

    def __bool__(self) -> bool:
        return bool(self._policies)

    def for_alert(self, alert: Alert) -> EscalationPolicy | None:
        """The most specific policy: community and category, category, community, severity."""
        severity, community, category = alert.severity, alert.community, alert.category
        for key in (
            (severity, community, category),
            (severity, None, category),
            (severity, community, None),
            (severity, None, None),
        ):
            policy = self._policies.get(key)
            if policy is not None:
                return policy
        return None


def first_due(
    policy: EscalationPolicy, opened_at: datetime, notified: bool
) -> tuple[int, EscalationStep | None, datetime | None]:
    """(steps done, the opened event's step, next step due) for an alert opening now.

    An alert opened quietly (silenced, flapping) has done no step: its first one is due at once
    and fires as soon as nothing holds it back.
    """
    steps = policy.steps
    if not notified:
        return 0, None, opened_at + timedelta(seconds=steps[0].after_s)
    if steps[0].after_s == 0:
        return 1, steps[0], _next_due(policy, 1, opened_at, opened_at)
    return 0, None, opened_at + timedelta(seconds=steps[0].after_s)


def step(
    policy: EscalationPolicy, alert: Alert, now: datetime
) -> tuple[EscalationStep, int, datetime | None]:
    """Fire the alert's due step: (the step, steps done after it, when the next one is due)."""
    done = alert.escalation_step
    steps = policy.steps
    fired = steps[min(done, len(steps) - 1)]
    due = alert.next_escalation_at or now
    done = min(done + 1, len(steps))
    return fired, done, _next_due(policy, done, due, now)


def has_next(policy: EscalationPolicy, done: int) -> bool:
    """Whether a step is left after `done` (repeats of the last one are not a next step)."""
    return done < len(policy.steps)


def _next_due(
    policy: EscalationPolicy, done: int, fired_due: datetime, now: datetime
) -> datetime | None:
    steps = policy.steps
    if done < len(steps):
        gap = steps[done].after_s - steps[done - 1].after_s
    elif policy.repeat_every_s is not None:
        gap = policy.repeat_every_s
    else:
        return None
    following = fired_due + timedelta(seconds=gap)
    # late (held by a silence, or the agent was down): keep the spacing from now, do not bunch
    return following if following > now else now + timedelta(seconds=gap)
