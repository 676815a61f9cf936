"""Who an id of `AlertEvent.people` is (`edge.sinks.Directory`): a person of the duty roster, or a
family member of a household (`family:<household>#<index>`, from the household register).

Group robots are given the roster alone (`staff`): a family member's number is never @-mentioned
in the duty staff's group chat nor their links posted there. Channels that reach one person (SMS,
voice) are given the whole directory (with their own `recipients:` and roster before it,
`edge.sinks.Everyone`): they phone the people an escalation step named (the person on duty, the
next on the roster, a household's family), and their own people for a step that names a tier
only (`edge.sinks.Audience`).
"""

from __future__ import annotations

from collections.abc import Callable

from edge.agent import parse_family_person_id
from edge.alerts import Roster
from edge.enrich import HouseholdStore
from edge.sinks import Card, Contact


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
        return Card(person_id, member.name, member.phone)


class StaffDirectory:
    """The roster's people only: what a group chat may mention."""

    def __init__(self, roster: Roster | None) -> None:
        self.roster = roster

    def contact(self, person_id: str) -> Contact | None:
        return self.roster.contact(person_id) if self.roster is not None else None
