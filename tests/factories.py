"""Small builders of domain values for pure unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

from edge.model import Alert, AlertEvent, AlertEventKind, AlertStatus, Severity

AT = datetime(2026, 11, 23, tzinfo=UTC)


def opened_event(i: int, rule: str = "smoke", category: str = "smoke") -> AlertEvent:
    """The `opened` event of a critical alert of device `d<i>`, ids `a<i>` and `e<i>`."""
    alert = Alert(
        id=f"a{i}",
        key=f"{rule}|d{i}",
        rule=rule,
        summary=rule.capitalize(),
        severity=Severity.CRITICAL,
        status=AlertStatus.ACTIVE,
        device_id=f"d{i}",
        model="m",
        category=category,
        community="c1",
        building="b1",
        opened_at=AT,
        updated_at=AT,
        last_seen_at=AT,
    )
    return AlertEvent(id=f"e{i}", kind=AlertEventKind.OPENED, at=AT, actor="rule", alert=alert)
