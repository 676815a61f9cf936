"""Who an id of `AlertEvent.people` is (`edge.sinks.Directory`): a person of the duty roster, or a
family member of a household (`family:<household>#<index>`, from the household register).

Group robots are given the roster alone (`staff`): a family member's number is never @-mentioned
in the duty staff's group chat nor their links posted there. Channels that reach one person (SMS,
voice) are given the whole directory: `EventPeople` phones the people an escalation step named
(the person on duty, the next on the roster, a household's family), and the channel's own
recipients for a step that names a tier only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edge.agent import parse_family_person_id
from edge.alerts import Roster
from edge.enrich import HouseholdStore
from edge.model import AlertEvent
from edge.sinks import Contact, Recipient, Recipients


@dataclass(frozen=True, slots=True)
class FamilyMember:
    """A household's family contact as a channel sees it (`edge.sinks.Contact`)."""

    id: str
    name: str
    phone: str | None
    wecom: str | None = None
    dingtalk: str | None = None


class PeopleDirectory:
    """The roster's people and the households' family contacts.

    Args:
        households: the register once the agent has opened it (None before).
    """

    def __init__(
        self, roster: Roster | None, households: Callable[[], HouseholdStore | None]
    ) -> None:
        self.roster = roster
        self._households = households

    def contact(self, person_id: str) -> Contact | None:
        family = parse_family_person_id(person_id)
        if family is None:
            return self.roster.contact(person_id) if self.roster is not None else None
        store = self._households()
        household = store.get(family[0]) if store is not None else None
        if household is None or family[1] >= len(household.family):
            return None
        member = household.family[family[1]]
        return FamilyMember(person_id, member.name, member.phone)


class StaffDirectory:
    """The roster's people only: what a group chat may mention."""

    def __init__(self, roster: Roster | None) -> None:
        self.roster = roster

    def contact(self, person_id: str) -> Contact | None:
        return self.roster.contact(person_id) if self.roster is not None else None


class EventPeople:
    """A phone channel's recipients (`edge.sinks.Recipients`): the event's people when its step
    named some, else the channel's configured recipients (`fallback`)."""

    def __init__(self, directory: PeopleDirectory, fallback: Recipients) -> None:
        self.directory = directory
        self.fallback = fallback

    def for_event(self, event: AlertEvent) -> list[Recipient]:
        if not event.people:
            return list(self.fallback.for_event(event))
        found = (self.directory.contact(p) for p in event.people)
        return [Recipient(c.id, c.name, c.phone) for c in found if c is not None and c.phone]
