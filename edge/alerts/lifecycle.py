"""The alert lifecycle: one open alert per rule and device, moved by an explicit transition table.

active ──ack──> acknowledged ──resolve──> resolved
  │                                          ^
  └──────── resolve / condition cleared ─────┘
(assign keeps the status.) Each change is an event saying whether channels notify it: an alert
opened under a silence, or while its key flaps, is recorded quietly; its later events (and its
resolution) are notified only once it has been. Escalation steps come from `escalate_due`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from edge.alerts.escalation import (
    EscalationPolicies,
    EscalationPolicy,
    EscalationStep,
    first_due,
    has_next,
    step,
)
from edge.alerts.flapping import FlapDetector
from edge.alerts.incidents import INCIDENT_WINDOW_S, IncidentBook
from edge.alerts.reach import Reach, Target, Unreached, resolve
from edge.alerts.roster import Roster
from edge.alerts.silences import SilenceBook
from edge.clock import Clock
from edge.errors import AlertNotFound, AlertTransitionError
from edge.model import Alert, AlertEvent, AlertEventKind, AlertStatus, DeviceRef
from edge.rules import Verdict

Action = Literal["acknowledge", "resolve", "clear", "assign"]

TRANSITIONS: dict[tuple[AlertStatus, Action], AlertStatus] = {
    (AlertStatus.ACTIVE, "acknowledge"): AlertStatus.ACKNOWLEDGED,
    (AlertStatus.ACTIVE, "resolve"): AlertStatus.RESOLVED,
    (AlertStatus.ACTIVE, "clear"): AlertStatus.RESOLVED,
    (AlertStatus.ACTIVE, "assign"): AlertStatus.ACTIVE,
    (AlertStatus.ACKNOWLEDGED, "resolve"): AlertStatus.RESOLVED,
    (AlertStatus.ACKNOWLEDGED, "clear"): AlertStatus.RESOLVED,
    (AlertStatus.ACKNOWLEDGED, "assign"): AlertStatus.ACKNOWLEDGED,
}

_EVENT_KIND: dict[Action, AlertEventKind] = {
    "acknowledge": AlertEventKind.ACKNOWLEDGED,
    "resolve": AlertEventKind.RESOLVED,
    "clear": AlertEventKind.RESOLVED,
    "assign": AlertEventKind.ASSIGNED,
}

ESCALATION_ACTOR = "escalation"
_RAISED = frozenset({AlertEventKind.OPENED, AlertEventKind.REPEATED})
# alarms about one person: two SOS presses in one building are two people in need, so taking one
# does not stop the calls about the other (two smoke detectors in one building are one fire)
PERSONAL_ALARMS = frozenset({"sos", "fall"})


def alert_key(rule_id: str, device: DeviceRef) -> str:
    """At most one open alert per key: the rule and the device's whole identity."""
    return f"{rule_id}|{device.key}"


def _new_id() -> str:
    return uuid.uuid4().hex


class AlertBook:
    """The open alerts (active or acknowledged). Resolved alerts live only in the alert store."""

    def __init__(
        self,
        clock: Clock,
        open_alerts: Iterable[Alert] = (),
        *,
        policies: EscalationPolicies | None = None,
        silences: SilenceBook | None = None,
        flaps: FlapDetector | None = None,
        incident_window_s: float = INCIDENT_WINDOW_S,
        roster: Roster | None = None,
        reach: Reach | None = None,
    ) -> None:
        self._clock = clock
        self.roster = roster  # whom steps naming people reach
        self.reach = reach  # whether a channel carries a step (None: not asked)
        self.unreached = Unreached()
        self._acknowledged_incidents: dict[str, str] = {}  # incident id -> who acknowledged
        # `is None`, not `or`: an empty book is falsy and must still be the one given
        self.policies = EscalationPolicies() if policies is None else policies
        self.silences = SilenceBook() if silences is None else silences
        self.flaps = FlapDetector() if flaps is None else flaps
        self._by_key: dict[str, Alert] = {}
        self._by_id: dict[str, Alert] = {}
        self._due: dict[str, datetime] = {}  # alert id -> next escalation step, active alerts only
        restored = [a for a in open_alerts if a.status != AlertStatus.RESOLVED]
        self.incidents = IncidentBook(incident_window_s, restored)
        for alert in restored:
            self._remember(alert)

    def __len__(self) -> int:
        return len(self._by_key)

    def open_alerts(self) -> list[Alert]:
        return list(self._by_key.values())

    def get(self, alert_id: str) -> Alert | None:
        return self._by_id.get(alert_id)

    def is_open(self, key: str) -> bool:
        return key in self._by_key

    def in_incident(self, incident_id: str) -> list[Alert]:
        """The open alerts of one incident."""
        return [a for a in self._by_id.values() if a.incident_id == incident_id]

    @property
    def escalations_pending(self) -> int:
        return len(self._due)

    def apply(self, verdict: Verdict) -> AlertEvent | None:
        """Raise or clear the alert a verdict speaks of; returns the event, if anything changed."""
        device = verdict.reading.device
        key = alert_key(verdict.rule.id, device)
        current = self._by_key.get(key)
        if verdict.action == "clear":
            if current is None:  # the usual clear: a routine message of a device with no alert
                return None
            self.flaps.record(key, self._clock.now())
            return self._transition(current, "clear", actor="device", note=None)
        now = self._clock.now()
        if current is not None:
            if verdict.reading.at == current.last_seen_at:
                # the same device message again: a QoS 1 redelivery after a crash, not a new press
                return None
            updated = _changed(
                current, now, count=current.count + 1, last_seen_at=verdict.reading.at
            )
            self._remember(updated)
            # a repeat is recorded, not notified: reminders are the escalation policy's repeats
            return self._event(AlertEventKind.REPEATED, updated, "device", None, notify=False)
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
        return self._open(alert, offline=verdict.rule.kind == "offline")

    def apply_all(self, verdict: Verdict) -> list[AlertEvent]:
        """`apply`, and the alerts the raised one supersedes on the same device (its rule's
        `supersedes`) closed with a link to it: the events, the successor's first."""
        event = self.apply(verdict)
        if event is None:
            return []
        events = [event]
        if verdict.rule.supersedes and event.kind in _RAISED:
            device = verdict.reading.device
            for rule_id in verdict.rule.supersedes:
                predecessor = self._by_key.get(alert_key(rule_id, device))
                if predecessor is not None:
                    events.append(self._supersede(predecessor, event.alert))
        return events

    def _supersede(self, alert: Alert, successor: Alert) -> AlertEvent:
        note = f"superseded by {successor.rule} alert {successor.id}"
        event = self._transition(alert, "clear", actor="rule", note=note)
        # the link lives on the alert, so lists, the API and the history all show it
        linked = event.alert.model_copy(update={"superseded_by": successor.id})
        return event.model_copy(update={"alert": linked})

    def _open(self, alert: Alert, *, offline: bool) -> AlertEvent:
        now = alert.opened_at
        self.flaps.record(alert.key, now)
        changes: dict[str, Any] = {
            "incident_id": self.incidents.place(alert, offline=offline),
            "notified": True,
        }
        note = None
        silence = self.silences.matching(alert, now)
        if silence is not None:
            changes.update(notified=False, silenced_by=silence.id)
            note = f"silenced ({silence.reason}): recorded, not notified"
        elif self.flaps.is_flapping(alert.key, now):
            changes["flapping"] = True
            if self.flaps.take_notice(alert.key):
                note = "flapping: raised and cleared too often; not notified again until stable"
            else:
                changes["notified"] = False
                note = "flapping: recorded, not notified"
        first: EscalationStep | None = None
        policy = self.policies.for_alert(alert)
        done = 0
        if policy is not None:
            done, first, due = first_due(policy, now, changes["notified"])
            changes.update(escalation_step=done, next_escalation_at=due)
        opened = alert.model_copy(update=changes)
        if policy is None or first is None:
            self._remember(opened)
            return self._event(AlertEventKind.OPENED, opened, "rule", note, notify=opened.notified)
        target = resolve(first, opened, self.roster, now)
        event = self._event(
            AlertEventKind.OPENED,
            opened,
            "rule",
            _joined(note, f"notifying {target.whom}") if first.names_people else note,
            tier=first.tier,
            people=target.people,
        )
        event = self._reached(policy, done, event, target, now)
        self._remember(event.alert)
        return event

    def acknowledge(self, alert_id: str, actor: str, note: str | None = None) -> AlertEvent:
        return self._transition(self._open_alert(alert_id), "acknowledge", actor, note)

    def resolve(self, alert_id: str, actor: str, note: str | None = None) -> AlertEvent:
        return self._transition(self._open_alert(alert_id), "resolve", actor, note)

    def assign(
        self, alert_id: str, assignee: str, actor: str, note: str | None = None
    ) -> AlertEvent:
        return self._transition(self._open_alert(alert_id), "assign", actor, note, assignee)

    def escalate_due(self) -> list[AlertEvent]:
        """One `escalated` event per alert whose step is due and that nothing holds back."""
        now = self._clock.now()
        self.silences.prune(now)
        self.flaps.prune(now)
        events: list[AlertEvent] = []
        for alert_id, due in list(self._due.items()):
            if due > now:
                continue
            alert = self._by_id[alert_id]
            policy = self.policies.for_alert(alert)
            if policy is None:  # the policy was removed from the settings since
                self._remember(_changed(alert, now, next_escalation_at=None))
                continue
            if self.silences.matching(alert, now) is not None or self.flaps.is_flapping(
                alert.key, now
            ):
                continue  # held: fires once the silence ends or the key is stable
            if alert.incident_id in self._acknowledged_incidents:
                # someone took the incident: no more calls about any alert of it. Not stored: a
                # restart restores the timer, and this check drops it again
                self._due.pop(alert.id, None)
                continue
            # a step that reaches nobody makes the next one due now: fire it in this round
            for _ in range(len(policy.steps) + 1):
                fired, done, following = step(policy, alert, now)
                updated = _changed(
                    alert,
                    now,
                    notified=True,
                    escalation_step=done,
                    escalations=alert.escalations + 1,
                    next_escalation_at=following,
                )
                target = resolve(fired, updated, self.roster, now)
                waited = int((now - alert.opened_at).total_seconds())
                note = f"not acknowledged after {waited} s: notifying {target.whom}"
                event = self._event(
                    AlertEventKind.ESCALATED,
                    updated,
                    ESCALATION_ACTOR,
                    note,
                    tier=fired.tier,
                    people=target.people,
                )
                event = self._reached(policy, done, event, target, now)
                events.append(event)
                alert = event.alert
                if alert.next_escalation_at != now:
                    break
            self._remember(alert)
        return events

    def notify_people(
        self, alert_id: str, people: tuple[str, ...], tier: str, note: str, **changes: Any
    ) -> AlertEvent:
        """An `escalated` event that reaches `people` outside the policy's steps (a household's
        family), with `changes` to the alert (how many of them are told now)."""
        alert = self._open_alert(alert_id)
        now = self._clock.now()
        updated = _changed(alert, now, escalations=alert.escalations + 1, **changes)
        self._remember(updated)
        return self._event(
            AlertEventKind.ESCALATED, updated, ESCALATION_ACTOR, note, tier=tier, people=people
        )

    def handled(self, alert_id: str) -> str | None:
        """Who has taken the alert or its incident ("acknowledged by 李伟"); None while it still
        asks for someone, and for an alert no longer open (a brief alarm is still told of).
        Channels drop queued calls on it."""
        alert = self._by_id.get(alert_id)
        if alert is None:
            return None
        if alert.status == AlertStatus.ACKNOWLEDGED:
            return f"acknowledged by {alert.acknowledged_by}"
        if alert.incident_id is not None and alert.incident_id in self._acknowledged_incidents:
            return f"its incident acknowledged by {self._acknowledged_incidents[alert.incident_id]}"
        return None

    def _reached(
        self,
        policy: EscalationPolicy,
        done: int,
        event: AlertEvent,
        target: Target,
        now: datetime,
    ) -> AlertEvent:
        """The event as is when its step reaches someone; else saying so, the next step due now."""
        why = target.nobody
        fault = True
        if why is None and self.reach is not None and event.notify:
            why = self.reach.unreached(event)
            fault = not self.reach.console_only
        if why is None:
            return event
        self.unreached.note(event.alert, why, now, fault=fault)
        alert = event.alert
        if not fault:  # no channel by configuration: the console is all there is, on schedule
            return event.model_copy(update={"note": _joined(event.note, why)})
        if has_next(policy, done):
            alert = alert.model_copy(update={"next_escalation_at": now})
            then = "the next step at once"
        else:
            then = "no step left"
        note = _joined(event.note, f"reached nobody: {why}; {then}")
        return event.model_copy(update={"note": note, "alert": alert})

    def _open_alert(self, alert_id: str) -> Alert:
        alert = self._by_id.get(alert_id)
        if alert is None:
            raise AlertNotFound(f"no open alert {alert_id!r}")
        return alert

    def _transition(
        self,
        alert: Alert,
        action: Action,
        actor: str,
        note: str | None,
        assignee: str | None = None,
    ) -> AlertEvent:
        target = TRANSITIONS.get((alert.status, action))
        if target is None:
            raise AlertTransitionError(f"cannot {action} an alert that is {alert.status}")
        now = self._clock.now()
        changes: dict[str, Any] = {"status": target}
        if note is not None:
            changes["note"] = note
        if action == "assign":
            changes["assignee"] = assignee
        elif target == AlertStatus.ACKNOWLEDGED:
            changes.update(acknowledged_by=actor, acknowledged_at=now, next_escalation_at=None)
        else:
            changes.update(resolved_by=actor, resolved_at=now, next_escalation_at=None)
        updated = _changed(alert, now, **changes)
        if target == AlertStatus.RESOLVED:
            self._forget(updated)
        else:
            self._remember(updated)
        # channels hear the rest of an alert's story only if they heard its beginning
        return self._event(_EVENT_KIND[action], updated, actor, note, notify=updated.notified)

    def _event(
        self,
        kind: AlertEventKind,
        alert: Alert,
        actor: str,
        note: str | None,
        *,
        notify: bool = True,
        tier: str | None = None,
        people: tuple[str, ...] = (),
    ) -> AlertEvent:
        return AlertEvent(
            id=_new_id(),
            kind=kind,
            at=alert.updated_at,
            actor=actor,
            note=note,
            alert=alert,
            notify=notify,
            tier=tier,
            people=people,
        )

    def _remember(self, alert: Alert) -> None:
        self._by_key[alert.key] = alert
        self._by_id[alert.id] = alert
        if alert.next_escalation_at is not None and alert.status == AlertStatus.ACTIVE:
            self._due[alert.id] = alert.next_escalation_at
        else:
            self._due.pop(alert.id, None)
        if (
            alert.status == AlertStatus.ACKNOWLEDGED
            and alert.incident_id is not None
            and alert.category not in PERSONAL_ALARMS
        ):
            self._acknowledged_incidents.setdefault(
                alert.incident_id, alert.acknowledged_by or "someone"
            )

    def _forget(self, alert: Alert) -> None:
        self._by_key.pop(alert.key, None)
        self._by_id.pop(alert.id, None)
        self._due.pop(alert.id, None)
        self.incidents.closed(alert)
        if alert.incident_id is not None and not self.in_incident(alert.incident_id):
            self._acknowledged_incidents.pop(alert.incident_id, None)


def _joined(first: str | None, second: str) -> str:
    return second if first is None else f"{first}; {second}"


def _changed(alert: Alert, now: datetime, **changes: Any) -> Alert:
    """The alert with `changes`, touched now, one revision on."""
    return alert.model_copy(update={**changes, "updated_at": now, "revision": alert.revision + 1})
