"""The care watch: the sign-of-life rules watch exactly the households the register says live
alone (`households: living_alone`), brought in line at start and every `check_s` after, so a
household added, changed or removed through the API or a CSV import is watched within a minute.
"""

from __future__ import annotations

import asyncio
import logging

from edge.enrich import HouseholdStore
from edge.rules import RuleEngine

_log = logging.getLogger(__name__)


class CareWatch:
    """Hands the living-alone households of the register to the rule engine."""

    def __init__(self, households: HouseholdStore, rules: RuleEngine, *, check_s: float) -> None:
        self.households = households
        self.rules = rules
        self.check_s = check_s
        self.watched = 0  # living-alone households at the last check

    async def run(self) -> None:
        while True:
            # read in a worker thread: 10,000 records take a few hundred ms, which the alarms'
            # event loop must not wait for (the store is thread-safe)
            ids = await asyncio.to_thread(self._living_alone)
            self._apply(ids)
            await asyncio.sleep(self.check_s)

    def check(self) -> int:
        """Bring the rules in line with the register; how many households live alone."""
        return self._apply(self._living_alone())

    def _living_alone(self) -> list[str]:
        return [h.id for h in self.households.list(living_alone=True)]

    def _apply(self, ids: list[str]) -> int:
        if len(ids) != self.watched:
            _log.info("sign of life: %d households living alone watched", len(ids))
        self.rules.care_for(ids)
        self.watched = len(ids)
        return self.watched
