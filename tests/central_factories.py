"""Alerts and alert events for the central store's tests, built the way a gateway builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.model import Alert, AlertEvent, AlertEventKind, AlertStatus, Severity

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def opened(
    number: int,
    community: str = "c1",
    *,
    building: str = "b1",
    severity: Severity = Severity.CRITICAL,
    rule: str = "sos",
    category: str = "sos",
    at: datetime | None = None,
) -> AlertEvent:
    """The `opened` event of alert `<community>-<number>`, opened `number` seconds after T0."""
    when = at or T0 + timedelta(seconds=number)
    alert = Alert(
        id=f"{community}-{number}",
        key=f"{rule}|dev-{number}",
        rule=rule,
        summary="Emergency button pressed",
        severity=severity,
        status=AlertStatus.ACTIVE,
        device_id=f"dev-{number}",
        model="tuya-sos-button",
        category=category,
        community=community,
        building=building,
        unit=f"{number}-201",
        opened_at=when,
        updated_at=when,
        last_seen_at=when,
    )
    return AlertEvent(
        id=f"evt-{community}-{number}-opened",
        kind=AlertEventKind.OPENED,
        at=when,
        actor="rule",
        alert=alert,
    )


def moved(event: AlertEvent, kind: AlertEventKind, after_s: float) -> AlertEvent:
    """The next event of the same alert: acknowledged or resolved `after_s` after its opening."""
    alert = event.alert
    when = alert.opened_at + timedelta(seconds=after_s)
    changes: dict[str, object] = {"updated_at": when}
    if kind is AlertEventKind.ACKNOWLEDGED:
        changes |= {
            "status": AlertStatus.ACKNOWLEDGED,
            "acknowledged_at": when,
            "acknowledged_by": "duty",
        }
    elif kind is AlertEventKind.RESOLVED:
        changes |= {"status": AlertStatus.RESOLVED, "resolved_at": when, "resolved_by": "duty"}
        if alert.acknowledged_at is None:
            changes["acknowledged_at"] = None
    else:
        raise ValueError(kind)
    return AlertEvent(
        id=f"evt-{alert.id}-{kind}",
        kind=kind,
        at=when,
        actor="duty",
        alert=alert.model_copy(update=changes),
    )
