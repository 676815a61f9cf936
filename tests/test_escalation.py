"""Escalation on a FakeClock: tiers at their times, repeats until acknowledged, late steps spaced."""

from __future__ import annotations

import pytest

from edge.alerts import AlertBook, EscalationPolicies, EscalationPolicy, EscalationStep
from edge.clock import FakeClock
from edge.model import AlertEventKind, Severity
from tests.lifecycle import (
    BATTERY,
    CRITICAL_POLICY,
    SOS,
    START,
    book,
    device,
    raised,
    tiers,
)


def _run(book: AlertBook, clock: FakeClock, seconds: int) -> list[str | None]:
    """Advance one second at a time, escalating as the task would; the tiers fired."""
    fired = []
    for _ in range(seconds):
        clock.advance(1)
        fired.extend(tiers(book.escalate_due()))
    return fired


def test_an_unacknowledged_critical_alert_climbs_the_tiers_and_repeats() -> None:
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY)
    opened = raised(alerts, SOS, device("sos-1"), clock)
    assert (opened.kind, opened.notify, opened.tier) == (
        AlertEventKind.OPENED,
        True,
        "duty_officer",
    )

    assert _run(alerts, clock, 119) == []
    assert _run(alerts, clock, 1) == ["property_manager"]  # at 120 s
    assert _run(alerts, clock, 179) == []
    assert _run(alerts, clock, 1) == ["emergency_contacts"]  # at 300 s
    assert _run(alerts, clock, 900) == ["emergency_contacts"] * 3  # every 300 s after
    alert = alerts.open_alerts()[0]
    assert (alert.escalations, alert.escalation_step) == (5, 3)


def test_acknowledging_stops_escalation_and_resolving_is_notified() -> None:
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY)
    alert_id = raised(alerts, SOS, device("sos-1"), clock).alert.id
    assert _run(alerts, clock, 130) == ["property_manager"]
    ack = alerts.acknowledge(alert_id, "officer-7", "on my way")
    assert ack.notify
    assert ack.actor == "officer-7"
    assert ack.alert.next_escalation_at is None
    assert _run(alerts, clock, 3600) == []
    done = alerts.resolve(alert_id, "officer-7", "resident fine")
    assert done.notify
    assert done.actor == "officer-7"
    assert alerts.escalations_pending == 0


def test_escalated_events_are_notified_with_a_tier_and_unique_ids() -> None:
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY)
    raised(alerts, SOS, device("sos-1"), clock)
    events = []
    for _ in range(400):
        clock.advance(1)
        events.extend(alerts.escalate_due())
    assert [e.kind for e in events] == [AlertEventKind.ESCALATED] * 2
    assert all(e.notify and e.actor == "escalation" for e in events)
    assert len({e.id for e in events}) == 2
    assert [e.alert.revision for e in events] == [1, 2]


def test_no_policy_for_the_severity_means_no_escalation() -> None:
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY)
    opened = raised(alerts, BATTERY, device("sos-1"), clock)
    assert (opened.notify, opened.tier, opened.alert.next_escalation_at) == (True, None, None)
    assert _run(alerts, clock, 1000) == []


def test_a_community_policy_wins_over_the_default() -> None:
    own = EscalationPolicy(
        severity=Severity.CRITICAL,
        community="c2",
        steps=(EscalationStep(after_s=30, tier="night_guard"),),
    )
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY, own)
    first = raised(alerts, SOS, device("sos-1", community="c2"), clock)
    assert first.tier is None  # the first step is later: the opening goes to the default audience
    assert _run(alerts, clock, 600) == ["night_guard"]  # once: no repeats in that policy


def test_a_step_due_while_the_agent_was_down_fires_once_and_the_schedule_holds() -> None:
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY)
    raised(alerts, SOS, device("sos-1"), clock)
    clock.advance(250)  # down from before 120 s to 250 s
    restored = book(clock, CRITICAL_POLICY, open_alerts=alerts.open_alerts())
    assert tiers(restored.escalate_due()) == ["property_manager"]
    assert _run(restored, clock, 49) == []
    assert _run(restored, clock, 1) == ["emergency_contacts"]  # at 300 s, as planned


def test_steps_missed_together_are_not_bunched() -> None:
    clock = FakeClock(START)
    alerts = book(clock, CRITICAL_POLICY)
    raised(alerts, SOS, device("sos-1"), clock)
    clock.advance(400)  # both later steps passed while nobody was checking
    assert tiers(alerts.escalate_due()) == ["property_manager"]
    assert tiers(alerts.escalate_due()) == []  # not the next one at once
    assert _run(alerts, clock, 179) == []
    assert _run(alerts, clock, 1) == ["emergency_contacts"]  # 180 s later, the policy's spacing


def test_policies_must_be_ordered_and_unique() -> None:
    with pytest.raises(ValueError, match="increasing"):
        EscalationPolicy(
            severity=Severity.MAJOR,
            steps=(EscalationStep(after_s=60, tier="a"), EscalationStep(after_s=0, tier="b")),
        )
    with pytest.raises(ValueError, match="two escalation policies"):
        EscalationPolicies([CRITICAL_POLICY, CRITICAL_POLICY])
