"""Incidents: related alerts grouped as one (same community, building and category within a window).

An alert opening joins its group's incident when that incident still has an open alert and its
last alert opened within `window_s`; otherwise it starts a new one. A building-level alert (a
correlation rule's "confirmed fire", device id `building:<b>`) joins its group's open incident
whatever the window. Offline alerts group apart from alarms of the same category: five silent
smoke detectors are not a fire. An incident's status and severity come from its alerts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict

from edge.model import SEVERITY_RANK, Alert, AlertStatus, Severity

BUILDING_DEVICE_PREFIX = "building:"  # device id of a building-level (correlated) alert

Group = tuple[str, str, str]  # (community, building, category or "offline")


@dataclass(slots=True)
class _Open:
    incident_id: str
    last_joined: datetime
    open_alerts: int


INCIDENT_WINDOW_S = 300.0  # related alerts opening this close together are one incident


class IncidentBook:
    """Which incident an opening alert belongs to; open incidents only, in memory."""

    def __init__(
        self, window_s: float = INCIDENT_WINDOW_S, open_alerts: Iterable[Alert] = ()
    ) -> None:
        self.window = timedelta(seconds=window_s)
        self._by_group: dict[Group, _Open] = {}
        self._group_of: dict[str, Group] = {}  # incident id -> group
        for alert in sorted(open_alerts, key=lambda a: a.opened_at):
            if alert.incident_id is not None and alert.status != AlertStatus.RESOLVED:
                self._join(_group(alert, offline=False), alert.incident_id, alert.opened_at)

    def place(self, alert: Alert, *, offline: bool) -> str:
        """The incident id for an alert opening now (it is counted as open in it)."""
        group = _group(alert, offline=offline)
        current = self._by_group.get(group)
        if current is not None and (
            alert.device_id.startswith(BUILDING_DEVICE_PREFIX)
            or alert.opened_at - current.last_joined <= self.window
        ):
            incident_id = current.incident_id
        else:
            incident_id = uuid.uuid4().hex
        self._join(group, incident_id, alert.opened_at)
        return incident_id

    def closed(self, alert: Alert) -> None:
        """An alert of an incident was resolved."""
        if alert.incident_id is None:
            return
        group = self._group_of.get(alert.incident_id)
        current = self._by_group.get(group) if group is not None else None
        if group is None or current is None or current.incident_id != alert.incident_id:
            return
        current.open_alerts -= 1
        if current.open_alerts <= 0:
            del self._by_group[group]
            del self._group_of[alert.incident_id]

    def _join(self, group: Group, incident_id: str, at: datetime) -> None:
        current = self._by_group.get(group)
        if current is not None and current.incident_id == incident_id:
            current.open_alerts += 1
            current.last_joined = max(current.last_joined, at)
            return
        if current is not None:  # a new incident takes the group over; the old one winds down
            self._group_of.pop(current.incident_id, None)
        self._by_group[group] = _Open(incident_id, at, 1)
        self._group_of[incident_id] = group


def _group(alert: Alert, *, offline: bool) -> Group:
    # an alert restored from the store is told apart by its rule: offline rules end in "offline"
    quiet = offline or alert.rule.endswith("offline")
    return (alert.community, alert.building, "offline" if quiet else alert.category)


class Incident(BaseModel):
    """An incident as its alerts make it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    community: str
    building: str
    category: str
    severity: Severity  # the most severe of its alerts
    status: AlertStatus  # active if any alert is; acknowledged if every open one is; else resolved
    opened_at: AwareDatetime
    updated_at: AwareDatetime
    alert_count: int
    open_alerts: int
    devices: list[str]


def summarize(incident_id: str, alerts: Sequence[Alert]) -> Incident:
    """The incident made of `alerts` (at least one)."""
    statuses = {a.status for a in alerts}
    if AlertStatus.ACTIVE in statuses:
        status = AlertStatus.ACTIVE
    elif AlertStatus.ACKNOWLEDGED in statuses:
        status = AlertStatus.ACKNOWLEDGED
    else:
        status = AlertStatus.RESOLVED
    first = min(alerts, key=lambda a: a.opened_at)
    return Incident(
        id=incident_id,
        community=first.community,
        building=first.building,
        category=first.category,
        severity=min((a.severity for a in alerts), key=SEVERITY_RANK.__getitem__),
        status=status,
        opened_at=first.opened_at,
        updated_at=max(a.updated_at for a in alerts),
        alert_count=len(alerts),
        open_alerts=sum(a.status != AlertStatus.RESOLVED for a in alerts),
        devices=sorted({a.device_id for a in alerts}),
    )
