"""The alert lifecycle: one open alert per rule and device, moved by an explicit transition table.

active ──ack──> acknowledged ──resolve──> resolved
  │                                          ^
  └──────── resolve / condition cleared ─────┘
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Literal

from edge.clock import Clock
from edge.errors import AlertNotFound, AlertTransitionError
from edge.model import Alert, AlertEvent, AlertEventKind, AlertStatus, DeviceRef
from edge.rules import Verdict

Action = Literal["acknowledge", "resolve", "clear"]

TRANSITIONS: dict[tuple[AlertStatus, Action], AlertStatus] = {
    (AlertStatus.ACTIVE, "acknowledge"): AlertStatus.ACKNOWLEDGED,
    (AlertStatus.ACTIVE, "resolve"): AlertStatus.RESOLVED,
    (AlertStatus.ACTIVE, "clear"): AlertStatus.RESOLVED,
    (AlertStatus.ACKNOWLEDGED, "resolve"): AlertStatus.RESOLVED,
    (AlertStatus.ACKNOWLEDGED, "clear"): AlertStatus.RESOLVED,
}

_EVENT_KIND: dict[AlertStatus, AlertEventKind] = {
    AlertStatus.ACKNOWLEDGED: AlertEventKind.ACKNOWLEDGED,
    AlertStatus.RESOLVED: AlertEventKind.RESOLVED,
}


def alert_key(rule_id: str, device: DeviceRef) -> str:
    """At most one open alert per key: the rule and the device's whole identity."""
    return f"{rule_id}|{device.key}"


def _new_id() -> str:
    return uuid.uuid4().hex


class AlertBook:
    """The open alerts (active or acknowledged). Resolved alerts live only in the alert store."""

    def __init__(self, clock: Clock, open_alerts: Iterable[Alert] = ()) -> None:
        self._clock = clock
        self._by_key: dict[str, Alert] = {}
        self._by_id: dict[str, Alert] = {}
        for alert in open_alerts:
            if alert.status != AlertStatus.RESOLVED:
                self._remember(alert)

    def __len__(self) -> int:
        return len(self._by_key)

    def open_alerts(self) -> list[Alert]:
        return list(self._by_key.values())

    def get(self, alert_id: str) -> Alert | None:
        return self._by_id.get(alert_id)

    def is_open(self, key: str) -> bool:
        return key in self._by_key

    def apply(self, verdict: Verdict) -> AlertEvent | None:
        """Raise or clear the alert a verdict speaks of; returns the event, if anything changed."""
        device = verdict.reading.device
        key = alert_key(verdict.rule.id, device)
        current = self._by_key.get(key)
        now = self._clock.now()
        if verdict.action == "clear":
            if current is None:
                return None
            return self._transition(current, "clear", actor="device", note=None)
        if current is not None:
            if verdict.reading.at == current.last_seen_at:
                # the same device message again: a QoS 1 redelivery after a crash, not a new press
                return None
            updated = current.model_copy(
                update={
                    "count": current.count + 1,
                    "last_seen_at": verdict.reading.at,
                    "updated_at": now,
                }
            )
            self._remember(updated)
            return self._event(AlertEventKind.REPEATED, updated, actor="device", note=None)
        alert = Alert(
            id=_new_id(),
            key=key,
            rule=verdict.rule.id,
            summary=verdict.rule.summary,
            severity=verdict.rule.severity,
            status=AlertStatus.ACTIVE,
            device_id=device.device_id,
            model=device.model,
            category=device.category,
            community=device.community,
            building=device.building,
            unit=device.unit,
            opened_at=now,
            updated_at=now,
            last_seen_at=verdict.reading.at,
        )
        self._remember(alert)
        return self._event(AlertEventKind.OPENED, alert, actor="rule", note=None)

    def acknowledge(self, alert_id: str, actor: str, note: str | None = None) -> AlertEvent:
        return self._transition(self._open(alert_id), "acknowledge", actor, note)

    def resolve(self, alert_id: str, actor: str, note: str | None = None) -> AlertEvent:
        return self._transition(self._open(alert_id), "resolve", actor, note)

    def _open(self, alert_id: str) -> Alert:
        alert = self._by_id.get(alert_id)
        if alert is None:
            raise AlertNotFound(f"no open alert {alert_id!r}")
        return alert

    def _transition(self, alert: Alert, action: Action, actor: str, note: str | None) -> AlertEvent:
        target = TRANSITIONS.get((alert.status, action))
        if target is None:
            raise AlertTransitionError(f"cannot {action} an alert that is {alert.status}")
        now = self._clock.now()
        changes: dict[str, object] = {"status": target, "updated_at": now}
        if note is not None:
            changes["note"] = note
        if target == AlertStatus.ACKNOWLEDGED:
            changes.update(acknowledged_by=actor, acknowledged_at=now)
        else:
            changes.update(resolved_by=actor, resolved_at=now)
        updated = alert.model_copy(update=changes)
        if target == AlertStatus.RESOLVED:
            self._forget(updated)
        else:
            self._remember(updated)
        return self._event(_EVENT_KIND[target], updated, actor, note)

    def _event(
        self, kind: AlertEventKind, alert: Alert, actor: str, note: str | None
    ) -> AlertEvent:
        return AlertEvent(
            id=_new_id(), kind=kind, at=alert.updated_at, actor=actor, note=note, alert=alert
        )

    def _remember(self, alert: Alert) -> None:
        self._by_key[alert.key] = alert
        self._by_id[alert.id] = alert

    def _forget(self, alert: Alert) -> None:
        self._by_key.pop(alert.key, None)
        self._by_id.pop(alert.id, None)
