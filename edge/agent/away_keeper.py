"""The away keeper: a household's "away until" date, kept by the rules' away flag.

The household record says how long a resident is away (hospital, visiting family); the rule engine
knows only "away or not". At start, every `check_s` and after each change of the register through
the API, the keeper sets the flag of households away by their record, and brings back those whose
end date has passed: the flag is cleared (so inactivity counts again) and the record forgets the
date and reason. A flag set without a date (PUT .../away) is left alone.
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
        while True:
            await self.check()
            await asyncio.sleep(self.check_s)

    async def check(self) -> int:
        """One pass over the register: a household away by its record is away for the rules
        (a record imported or edited with a date), and one whose date has passed comes back:
        the flag is cleared (inactivity counts again) and the record forgets date and reason.
        Returns how many came back."""
        now = self.clock.now()
        rules = self.ticker.pipeline.rules
        back = 0
        for household in self.households.with_away_dates():
            place = (household.community, household.building, household.unit)
            if household.is_away(now):
                if not rules.is_away(*place):
                    await self.ticker.set_away(*place, True)
                continue
            await self.ticker.set_away(*place, False)
            self.households.set_away(household.id, None, None, now)
            _log.info("household %s: back (away until %s)", household.id, household.away_until)
            back += 1
        self.returned += back
        return back
