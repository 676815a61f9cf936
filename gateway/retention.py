"""Retention: what is finished is deleted from the data dir after its time, so it fits for years.

Resolved alerts (with their event history), notification delivery records, dead letters and
audit records each have a retention in days (settings `retention`); open and acknowledged alerts
are never deleted, nor anything the outbox has still to deliver. Runs as a task beside the agent,
once at start and then every `check_s`; what it deletes is counted on /metrics and logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge.alerts import AlertStore
from edge.outbox import Outbox
from edge.sinks import DeliveryLog
from gateway.audit import AuditLog

_log = logging.getLogger(__name__)

_ALERT_BATCH = 500  # alerts deleted per step; the event loop runs between steps


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each kind of record is kept."""

    resolved_alerts_days: float
    deliveries_days: float
    dead_letters_days: float
    audit_days: float


class Retention:
    """Deletes records past their retention from each store it is given."""

    def __init__(
        self,
        policy: RetentionPolicy,
        *,
        now: Callable[[], datetime],
        alerts: AlertStore,
        outbox: Outbox,
        deliveries: DeliveryLog | None,
        audit: AuditLog | None,
        check_s: float,
    ) -> None:
        self.policy = policy
        self.check_s = check_s
        self.deleted = {"alerts": 0, "deliveries": 0, "dead_letters": 0, "audit": 0}
        self._now = now
        self._alerts = alerts
        self._outbox = outbox
        self._deliveries = deliveries
        self._audit = audit

    async def run(self) -> None:
        """Prune now and every `check_s` until cancelled; a failed round is logged and retried."""
        while True:
            try:
                await self.prune()
            except Exception:  # a locked or damaged file: the data stays, the next round retries
                _log.exception("retention round failed; retrying in %.0f s", self.check_s)
            await asyncio.sleep(self.check_s)

    async def prune(self) -> dict[str, int]:
        """One round over every store; returns what it deleted."""
        now = self._now()
        policy = self.policy
        done = {"alerts": 0, "deliveries": 0, "dead_letters": 0, "audit": 0}
        before = now - timedelta(days=policy.resolved_alerts_days)
        while (step := self._alerts.prune_resolved(before, _ALERT_BATCH)) > 0:
            done["alerts"] += step
            await asyncio.sleep(0)  # the alert store shares the event loop's thread
        done["dead_letters"] = await self._outbox.prune_dead_letters(
            now - timedelta(days=policy.dead_letters_days)
        )
        if self._deliveries is not None:
            done["deliveries"] = await self._deliveries.prune(
                now - timedelta(days=policy.deliveries_days)
            )
        if self._audit is not None:
            audit, cutoff = self._audit, now - timedelta(days=policy.audit_days)
            done["audit"] = await asyncio.to_thread(audit.prune, cutoff)
        for kind, count in done.items():
            self.deleted[kind] += count
        if any(done.values()):
            _log.info(
                "retention: deleted %d resolved alerts, %d delivery records, %d dead letters, "
                "%d audit records",
                done["alerts"],
                done["deliveries"],
                done["dead_letters"],
                done["audit"],
            )
        return done
