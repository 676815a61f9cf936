"""The duty console in central mode: the console's alert source (gateway.console.source) over the
central store, and the live feed of the alert events that gateways post.

The console reads here what it reads on a gateway: open alerts a page at a time, one alert and its
history, a stream of alert events. It does not act: an alert's lifecycle (escalation, repeats,
channels) runs on the gateway that raised it, and an acknowledgement made here would never reach
it. The feed is this process's: a browser hears the events posted to the central process it is
connected to (run one central process per store, or give each its own console address).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime

from edge.alerts import AlertPage, AlertStream
from edge.clock import Clock, SystemClock
from edge.model import Alert, AlertEvent, AlertStatus, Severity
from gateway.central.store import AlertFilter, CentralStore

_log = logging.getLogger(__name__)


class CentralAlerts:
    """The central store as the console's alert source, with the feed of posted events."""

    def __init__(self, store: CentralStore, clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock or SystemClock()
        self._stream = AlertStream()
        # the loop the console's streams run on: posts arrive on worker threads (sync routes)
        self._loop: asyncio.AbstractEventLoop | None = None

    def now(self) -> datetime:
        return self._clock.now()

    def alerts(
        self,
        communities: list[str] | None,
        status: AlertStatus | None,
        severity: Severity | None,
        limit: int,
        cursor: str | None,
    ) -> AlertPage:
        wanted = AlertFilter(communities=communities, status=status, severity=severity)
        return self._store.list_alerts(wanted, limit=limit, cursor=cursor)

    def alert(self, alert_id: str) -> Alert | None:
        # unscoped, as the gateway's desk: the console's pages check the caller's communities
        # (a 404 like the API's, audited)
        return self._store.get(alert_id, None)

    def history(self, alert_id: str) -> list[AlertEvent]:
        return self._store.history(alert_id, None)

    def alerts_version(self) -> int | None:
        return None  # gateways post to other central processes too: nothing read is kept

    @contextlib.contextmanager
    def subscription(self) -> Iterator[asyncio.Queue[AlertEvent | None]]:
        """Alert events as gateways post them; None in the queue: cut off (too far behind)."""
        self._loop = asyncio.get_running_loop()
        with self._stream.subscription() as queue:
            yield queue

    def publish(self, events: Sequence[AlertEvent]) -> None:
        """Events just committed to the store, from any thread; dropped when nobody listens."""
        loop = self._loop
        if loop is None or not len(self._stream) or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._stream.publish, list(events))
        except RuntimeError:  # the loop closed between the check and the call (shutting down)
            _log.debug("console feed: loop closed, %d events not streamed", len(events))

    def close(self) -> None:
        """End every console stream (shutdown): the browsers reconnect to what comes next."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._stream.close)
