"""Builders for the alert lifecycle's pure tests: verdicts from a rule and a device, on a FakeClock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from edge.alerts import AlertBook, EscalationPolicies, EscalationPolicy, EscalationStep
from edge.clock import FakeClock
from edge.model import AlertEvent, DeviceRef, Reading, Severity
from edge.rule_spec import Condition, RuleSpec
from edge.rules import Verdict

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
_SEQ = itertools.count(1)

SOS = RuleSpec(
    id="sos",
    summary="Emergency button pressed",
    severity=Severity.CRITICAL,
    when=Condition(field="action", eq="emergency"),
)
SMOKE = RuleSpec(
    id="smoke",
    summary="Smoke detected",
    severity=Severity.CRITICAL,
    when=Condition(field="smoke", eq=True),
    clear=Condition(field="smoke", eq=False),
)
BATTERY = RuleSpec(
    id="low-battery",
    summary="Battery low",
    severity=Severity.MINOR,
    when=Condition(field="battery", lt=20),
    clear=Condition(field="battery", ge=25),
)
CONFIRMED_FIRE = RuleSpec(
    id="confirmed-fire",
    summary="Two smoke detectors in one building: confirmed fire",
    severity=Severity.CRITICAL,
    when=Condition(field="smoke", eq=True),
)

CRITICAL_POLICY = EscalationPolicy(
    severity=Severity.CRITICAL,
    steps=(
        EscalationStep(after_s=0, tier="duty_officer"),
        EscalationStep(after_s=120, tier="property_manager"),
        EscalationStep(after_s=300, tier="emergency_contacts"),
    ),
    repeat_every_s=300,
)


def device(
    device_id: str,
    category: str = "sos",
    community: str = "c1",
    building: str = "b1",
) -> DeviceRef:
    return DeviceRef(
        device_id=device_id,
        model=f"{category}-model",
        category=category,
        community=community,
        building=building,
    )


def verdict(rule: RuleSpec, ref: DeviceRef, clock: FakeClock, action: str = "raise") -> Verdict:
    """A verdict on a reading taken now (each one a distinct device message)."""
    at = clock.now().replace(microsecond=next(_SEQ) % 1_000_000)
    reading = Reading(device=ref, fields={}, at=at, received_at=at)
    return Verdict(rule, "raise" if action == "raise" else "clear", reading)


def book(clock: FakeClock, *policies: EscalationPolicy, **kwargs: object) -> AlertBook:
    return AlertBook(clock, policies=EscalationPolicies(policies), **kwargs)  # type: ignore[arg-type]


def raised(book: AlertBook, rule: RuleSpec, ref: DeviceRef, clock: FakeClock) -> AlertEvent:
    event = book.apply(verdict(rule, ref, clock))
    assert event is not None
    return event


def cleared(book: AlertBook, rule: RuleSpec, ref: DeviceRef, clock: FakeClock) -> AlertEvent:
    event = book.apply(verdict(rule, ref, clock, "clear"))
    assert event is not None
    return event


def tiers(events: list[AlertEvent]) -> list[str | None]:
    return [e.tier for e in events]
