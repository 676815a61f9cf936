"""The escalation task: every `check_s` it fires the escalation steps that are due and commits them.

Timers are the alerts' own `next_escalation_at` (restored with the open alerts at start), so a step
due while the agent was down fires at the first check after it is back, once.
"""

from __future__ import annotations

import asyncio
import logging

from edge.agent.family_caller import FamilyCaller
from edge.alerts import AlertBook
from edge.model import AlertEvent
from edge.outbox import Outbox

_log = logging.getLogger(__name__)


class Escalator:
    """Runs beside the ingest lanes, like the liveness monitor."""

    def __init__(self, alerts: AlertBook, outbox: Outbox, *, check_s: float) -> None:
        self.alerts = alerts
        self.outbox = outbox
        self.check_s = check_s
        self.family: FamilyCaller | None = None  # set once the household register is open
        self.fired = 0  # escalated events since start

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            await self.check()

    async def check(self) -> list[AlertEvent]:
        """One round: the due steps become events, committed to the outbox before they count."""
        if self.alerts.roster is not None:
            self.alerts.roster.refresh()  # a stat; the file is read again only when it changed
        events = self.alerts.escalate_due()
        if self.family is not None:
            events += self.family.due()
        if events:
            await self.outbox.commit(events=events)
            self.fired += len(events)
            for event in events:
                # ids and tiers only: names stay in the alert's history, not in the journal
                _log.warning(
                    "alert %s (%s) not acknowledged: escalated to %s, %d people",
                    event.alert.id,
                    event.alert.rule,
                    event.tier or "the people of its step",
                    len(event.people),
                )
        return events
