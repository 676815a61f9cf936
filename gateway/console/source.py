"""What the console's board and alert page need from where the alerts live: on a gateway the
agent's desk (`edge.agent.Desk`), in central mode the central store (gateway.central.console).

Reading is the same everywhere: open alerts a page at a time, one alert and its history, the live
stream of alert events. Acting is not: an alert's lifecycle (escalation, repeats, channels) runs
on the gateway that raised it, so central mode reads and the gateway's console acts.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from edge.alerts import AlertPage
from edge.model import Alert, AlertEvent, AlertStatus, Severity


class AlertSource(Protocol):
    """Alerts to read and follow; `edge.agent.Desk` is one, as is central's store."""

    def now(self) -> datetime: ...

    def alerts(
        self,
        communities: list[str] | None,
        status: AlertStatus | None,
        severity: Severity | None,
        limit: int,
        cursor: str | None,
    ) -> AlertPage:
        """Alerts newest first within `communities` (None: all), a page at a time."""
        ...

    def alert(self, alert_id: str) -> Alert | None: ...

    def history(self, alert_id: str) -> list[AlertEvent]: ...

    def subscription(self) -> AbstractContextManager[asyncio.Queue[AlertEvent | None]]:
        """Alert events as they are stored; None in the queue: cut off, or stopping."""
        ...

    def alerts_version(self) -> int | None:
        """A number that changes whenever a stored alert does; None: no such number (another
        process may write the store), so nothing read may be kept."""
        ...


class AlertDesk(AlertSource, Protocol):
    """A source that also acts: the agent's desk (central mode has none)."""

    async def acknowledge(self, alert_id: str, actor: str, note: str | None) -> Alert: ...

    async def resolve(self, alert_id: str, actor: str, note: str | None) -> Alert: ...

    async def assign(self, alert_id: str, assignee: str, actor: str, note: str | None) -> Alert: ...
