"""The away keeper: a household's "away until" date, kept by the rules' away flag.

The household record says how long a resident is away (hospital, visiting family); the rule engine
knows only "away or not". At start the keeper brings the flag in line with the records, and then
every `check_s` it brings back the households whose end date has passed: the flag is cleared (so
inactivity counts again) and the record forgets the date and reason.
"""

from __future__ import annotations

import asyncio
import logging

from edge.agent.rule_ticker import RuleTicker
from edge.clock import Clock
from edge.enrich import HouseholdStore

_log = logging.getLogger(__name__)


class AwayKeeper:
    """Ends away spells on their date; keeps the rules' away flag in line with the records."""

    def __init__(
        self, households: HouseholdStore, ticker: RuleTicker, clock: Clock, *, check_s: float
    ) -> None:
        self.households = households
        self.ticker = ticker
        self.clock = clock
        self.check_s = check_s
        self.returned = 0  # households brought back by their end date since start

    async def run(self) -> None:
        await self.restore()
        while True:
            await asyncio.sleep(self.check_s)
            await self.check()

    async def restore(self) -> None:
        """At start: households away by their record are away for the rules too."""
        rules = self.ticker.pipeline.rules
        for household in self.households.away(self.clock.now()):
            if not rules.is_away(household.community, household.building, household.unit):
                await self.ticker.set_away(
                    household.community, household.building, household.unit, True
                )
        await self.check()

    async def check(self) -> int:
        """Bring back every household whose away date has passed; how many came back."""
        now = self.clock.now()
        back = 0
        for household in self.households.expired_away(now):
            await self.ticker.set_away(
                household.community, household.building, household.unit, False
            )
            self.households.set_away(household.id, None, None, now)
            _log.info("household %s: back (away until %s)", household.id, household.away_until)
            back += 1
        self.returned += back
        return back
