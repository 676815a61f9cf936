"""The board's open alerts are read once per change of the stored alerts, not once per screen, and
never kept past a change: a board never shows less than the store holds.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from edge.alerts import AlertPage
from edge.model import Alert, AlertEvent, AlertStatus, Severity
from gateway.console.board import Filters, OpenAlerts, gather
from tests.central_factories import opened


class _Source:
    """Alerts in memory with a version, counting how often they are read."""

    def __init__(self, versioned: bool = True) -> None:
        self.items: list[Alert] = []
        self.version = 0
        self.versioned = versioned
        self.reads = 0
        self.store_while_reading: Alert | None = None

    def add(self, alert: Alert) -> None:
        self.items.append(alert)
        self.version += 1

    def now(self) -> datetime:
        return datetime.now(UTC)

    def alerts(
        self,
        communities: list[str] | None,
        status: AlertStatus | None,
        severity: Severity | None,
        limit: int,
        cursor: str | None,
    ) -> AlertPage:
        self.reads += 1
        if self.store_while_reading is not None:  # another event stored meanwhile
            self.add(self.store_while_reading)
            self.store_while_reading = None
        found = [
            a
            for a in self.items
            if a.status is status and (communities is None or a.community in communities)
        ]
        return AlertPage(found, None)

    def alert(self, alert_id: str) -> Alert | None:
        return None

    def history(self, alert_id: str) -> list[AlertEvent]:
        return []

    def subscription(self) -> AbstractContextManager[asyncio.Queue[AlertEvent | None]]:
        raise NotImplementedError

    def alerts_version(self) -> int | None:
        return self.version if self.versioned else None


def test_open_alerts_are_read_once_per_change_and_per_scope() -> None:
    source, kept = _Source(), OpenAlerts()
    source.add(opened(1, "c1").alert)
    for _ in range(5):  # five screens fetch the board after one event
        assert gather(source, None, Filters(), kept).matching == 1
    assert source.reads == 2  # one read (active, acknowledged) for all five
    assert gather(source, ["c1"], Filters(), kept).matching == 1  # another scope: its own read
    assert source.reads == 4

    source.add(opened(2, "c1").alert)  # a change: every scope is read again
    assert gather(source, None, Filters(), kept).matching == 2
    assert gather(source, ["c1"], Filters(), kept).matching == 2


def test_what_changed_while_it_was_read_is_not_kept() -> None:
    source, kept = _Source(), OpenAlerts()
    source.add(opened(1, "c1").alert)
    source.store_while_reading = opened(2, "c1").alert
    gather(source, None, Filters(), kept)
    # the next fetch (the event of alert 2 triggers it) sees alert 2, not a stale board
    assert gather(source, None, Filters(), kept).matching == 2


def test_a_source_without_a_version_is_read_every_time() -> None:
    source, kept = _Source(versioned=False), OpenAlerts()
    source.add(opened(1, "c1").alert)
    gather(source, None, Filters(), kept)
    gather(source, None, Filters(), kept)
    assert source.reads == 4
