"""Whom an escalation step reaches: the people its names resolve to on the roster at that moment,
and whether any channel will carry it (`Reach`, which the gateway answers from its channels).

A step that reaches nobody (no person on duty, a person the roster does not know, no channel whose
route takes it, every such channel failing) is not a quiet success: the alert's history says so,
`/healthz` counts it, and the next step is due at once (`edge.alerts.lifecycle`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from edge.alerts.escalation import HERE, EscalationStep
from edge.alerts.roster import OnDuty, Roster
from edge.model import Alert, AlertEvent


class Reach(Protocol):
    """Whether any channel will carry an event: None if one will, else why none will.

    `console_only`: the gateway has no notification channel at all, by its configuration (a
    demo, a console-only site): a step is still said to reach nobody on the alert, but that is
    no fault of the moment, so /healthz does not turn degraded for it.
    """

    @property
    def console_only(self) -> bool: ...

    def unreached(self, event: AlertEvent) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Target:
    """The people a step resolved to, how the history names them, and why none if none."""

    people: tuple[str, ...]
    whom: str  # "李伟 (on duty in garden-security, shift night)", "tier property_manager"
    nobody: str | None = None


def resolve(step: EscalationStep, alert: Alert, roster: Roster | None, at: datetime) -> Target:
    """The people `step` names for `alert` at `at` (aware)."""
    if not step.names_people:
        return Target((), step.tier or "default audience")
    tier = f"tier {step.tier}" if step.tier is not None else None
    found, how, nobody = _people(step, alert, roster, at)
    whom = ", ".join(filter(None, (how, tier))) or "nobody"
    return Target(found, whom, nobody)


@dataclass
class Unreached:
    """Steps that reached nobody since start: what /healthz shows."""

    count: int = 0
    last_at: datetime | None = None
    last: str | None = None  # "alert <id> (<rule>): <why>"
    last_fault_at: datetime | None = None  # the latest that was not by configuration

    def note(self, alert: Alert, why: str, at: datetime, *, fault: bool = True) -> None:
        self.count += 1
        self.last_at = at
        self.last = f"alert {alert.id} ({alert.rule}, {alert.community}/{alert.building}): {why}"
        if fault:
            self.last_fault_at = at


def _people(
    step: EscalationStep, alert: Alert, roster: Roster | None, at: datetime
) -> tuple[tuple[str, ...], str, str | None]:
    if roster is None:
        return (), "", "no duty roster is configured (roster_file)"
    if step.person is not None:
        person = roster.contact(step.person)
        if person is None:
            return (), "", f"no person {step.person!r} in the roster"
        return (person.id,), person.name, None
    team_ref = step.on_duty if step.on_duty is not None else step.next_on_roster
    assert team_ref is not None  # names_people
    duties = _duties(team_ref, alert, roster, at)
    if not duties:
        where = _where(team_ref, alert)
        return (), "", f"nobody is on duty in {where} at {at:%Y-%m-%d %H:%M} UTC"
    duty = duties[0]
    if step.on_duty is not None:
        return (
            (duty.person.id,),
            f"{duty.person.name} (on duty in {duty.team}, {duty.reason})",
            None,
        )
    following = roster.next_on_roster(duty.team, at)
    if following is None:
        return (), "", f"nobody after {duty.person.name} on the roster of {duty.team}"
    return (following.id,), f"{following.name} (next on the roster of {duty.team})", None


def _duties(team_ref: str, alert: Alert, roster: Roster, at: datetime) -> list[OnDuty]:
    if team_ref == HERE:
        return roster.on_duty(alert.community, alert.building, at)
    if not roster.has_team(team_ref):
        return []
    duty = roster.team_on_duty(team_ref, at)
    return [] if duty is None else [duty]


def _where(team_ref: str, alert: Alert) -> str:
    if team_ref == HERE:
        return f"the teams of {alert.community}/{alert.building}"
    return f"team {team_ref}"
