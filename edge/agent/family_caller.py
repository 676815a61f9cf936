"""Family of elderly residents: an SOS or a fall that nobody on duty acknowledges within a family
member's `call_after_minutes` (per household, `edge.enrich.Household.family`) also reaches them.

Each family member due is one person of an `escalated` event (tier `family`), their id
`family:<household id>#<index in the household's family>`, which the gateway's directory turns
back into a name and a phone for the channels that reach a person (SMS, voice). The alert counts
the members told (`family_notified`, stored with it), so a restart tells nobody twice. The
history names the relation only ("女儿"), never a family member's name or number.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from edge.alerts import AlertBook
from edge.clock import Clock
from edge.enrich import FamilyContact, Household, HouseholdStore, household_id
from edge.model import Alert, AlertEvent, AlertStatus

_log = logging.getLogger(__name__)

FAMILY_TIER = "family"
FAMILY_CATEGORIES = frozenset({"sos", "fall"})  # alarms about one resident's life
RELOOK_S = 60.0  # a household without family (or edited since) is looked up again this often


def family_person_id(household: str, index: int) -> str:
    """The id a family member has in `AlertEvent.people`."""
    return f"family:{household}#{index}"


def parse_family_person_id(person_id: str) -> tuple[str, int] | None:
    """(household id, index) of a family member's id; None for any other id."""
    if not person_id.startswith("family:"):
        return None
    household, _, index = person_id.removeprefix("family:").rpartition("#")
    return (household, int(index)) if household and index.isdigit() else None


class FamilyCaller:
    """Finds the family members due for the open SOS and fall alerts; the escalator commits."""

    def __init__(self, alerts: AlertBook, households: HouseholdStore, clock: Clock) -> None:
        self.alerts = alerts
        self.households = households
        self.clock = clock
        self._next_look: dict[str, datetime] = {}  # alert id -> when to look again
        self.notified = 0  # family members told since start

    def due(self) -> list[AlertEvent]:
        now = self.clock.now()
        events: list[AlertEvent] = []
        open_ids = set()
        for alert in self.alerts.open_alerts():
            open_ids.add(alert.id)
            if (
                alert.status != AlertStatus.ACTIVE
                or alert.category not in FAMILY_CATEGORIES
                or not alert.notified  # held by a silence: nobody on duty was asked yet
            ):
                continue
            look = self._next_look.get(alert.id)
            if look is not None and look > now:
                continue
            event = self._call(alert, now)
            if event is not None:
                events.append(event)
        for gone in set(self._next_look) - open_ids:
            del self._next_look[gone]
        return events

    def _call(self, alert: Alert, now: datetime) -> AlertEvent | None:
        household = self._household(alert)
        relook = now + timedelta(seconds=RELOOK_S)
        if household is None:
            self._next_look[alert.id] = relook
            return None
        order = household.family_to_call()
        told = alert.family_notified
        due = [f for f in order[told:] if _when(alert, f) <= now]
        left = [_when(alert, f) for f in order[told + len(due) :]]
        self._next_look[alert.id] = min([relook, *left])
        if not due:
            return None
        people = tuple(family_person_id(household.id, household.family.index(f)) for f in due)
        waited = int((now - alert.opened_at).total_seconds())
        relations = ", ".join(f.relation or "家属 family" for f in due)
        note = (
            f"nobody on duty acknowledged in {waited} s: notifying the family of the household "
            f"({relations})"
        )
        self.notified += len(due)
        _log.warning("alert %s (%s): %s", alert.id, alert.rule, note)
        return self.alerts.notify_people(
            alert.id, people, FAMILY_TIER, note, family_notified=told + len(due)
        )

    def _household(self, alert: Alert) -> Household | None:
        found = self.households.household_of_device(alert.device_id)
        if found is None and alert.unit is not None:
            found = self.households.get(household_id(alert.community, alert.building, alert.unit))
        return found


def _when(alert: Alert, member: FamilyContact) -> datetime:
    return alert.opened_at + timedelta(minutes=member.call_after_minutes or 0)
