"""The households away from home (hospital, visiting family) shown on the alarm board: the sign-of-
life rules raise nothing for them until their end date, and the people on duty should know why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from edge.agent import Desk
from gateway.household_access import sees_in_full
from gateway.privacy import Pseudonyms
from gateway.tokens import Principal


@dataclass(frozen=True, slots=True)
class AwayLine:
    """One household away: where (masked by role), until when, why (for those who see it)."""

    place: str
    until: datetime | None
    reason: str | None


def away_now(desk: Desk, principal: Principal, places: Pseudonyms) -> list[AwayLine]:
    """The register's households away now in the caller's communities, soonest back first."""
    lines = []
    for home in desk.households.away(desk.now()):
        if not principal.may_see(home.community):
            continue
        full = sees_in_full(principal, home)
        unit = home.unit if full else places.unit(home.community, home.building, home.unit)
        lines.append(
            AwayLine(
                f"{home.community}/{home.building}/{unit}",
                home.away_until,
                home.away_reason if full else None,
            )
        )
    return sorted(lines, key=lambda line: (line.until is None, line.until or desk.now()))
