"""The rule ticker: every `tick_s` asks the rule engine what time decided, and commits it.

Holds that lasted, suspicions not withdrawn in time, quiet households and expiring windows
become alert events here, committed to the outbox like a message's; then the rule state is saved.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from edge.agent.pipeline import Pipeline
from edge.clock import Clock
from edge.model import AlertEvent
from edge.outbox import Outbox
from edge.rules import Verdict

_log = logging.getLogger(__name__)


class RuleTicker:
    """Runs `RuleEngine.tick` on the clock and commits its verdicts' alert events."""

    def __init__(self, pipeline: Pipeline, outbox: Outbox, clock: Clock, *, tick_s: float) -> None:
        self.pipeline = pipeline
        self.outbox = outbox
        self.clock = clock
        self.tick_s = tick_s
        self.raised = 0  # alerts opened by ticks since start

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            await self.tick()

    async def tick(self) -> list[AlertEvent]:
        """One round: verdicts, their events committed, then the rule state saved."""
        return await self._commit(self.pipeline.rules.tick(self.clock.now()))

    async def set_away(
        self,
        community: str,
        building: str,
        unit: str,
        away: bool,
        until: datetime | None = None,
        reason: str | None = None,
    ) -> None:
        """Mark a household away (back by itself at `until`) or back; an open absence alert
        clears when it goes away."""
        rules = self.pipeline.rules
        now = self.clock.now()
        await self._commit(rules.set_away(community, building, unit, away, now, until, reason))

    async def sign(self, community: str, building: str, unit: str) -> list[AlertEvent]:
        """A sign of life no sensor saw (a check-in answered): open absence alerts clear."""
        rules = self.pipeline.rules
        return await self._commit(rules.sign(community, building, unit, self.clock.now()))

    async def _commit(self, verdicts: list[Verdict]) -> list[AlertEvent]:
        events = [e for v in verdicts if (e := self.pipeline.alerts.apply(v)) is not None]
        if events:
            # committed before the state that says they happened: a crash between the two
            # re-decides the same verdict, which the alert book drops as a redelivery
            await self.outbox.commit(events=events)
            self.raised += sum(1 for e in events if e.kind == "opened")
            for event in events:
                _log.info("rule %s: %s %s", event.alert.rule, event.kind, event.alert.device_id)
        self.pipeline.rules.flush()
        return events
