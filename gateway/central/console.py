"""The duty console in central mode: the console's alert source (gateway.console.source) over the
central store, and the live feed of the alert events that gateways post.

The console reads here what it reads on a gateway: open alerts a page at a time, one alert and its
history, a stream of alert events. It does not act: an alert's lifecycle (escalation, repeats,
channels) runs on the gateway that raised it, and an acknowledgement made here would never reach
it. On PostgreSQL the feed is the store's: every batch announces its new event ids when it commits
(LISTEN/NOTIFY), so each central process streams what any of them stored. On SQLite (one process)
it is the events this process stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from edge.alerts import AlertPage, AlertStream
from edge.clock import Clock, SystemClock
from edge.model import Alert, AlertEvent, AlertStatus, Severity
from gateway.central.store import NOTIFY_CHANNEL, AlertFilter, CentralStore

_log = logging.getLogger(__name__)


class CentralAlerts:
    """The central store as the console's alert source, with the feed of posted events."""

    def __init__(self, store: CentralStore, clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock or SystemClock()
        self._stream = AlertStream()
        # the loop the console's streams run on: posts arrive on worker threads (sync routes)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listens = store.engine.dialect.name == "postgresql"
        self._listener: threading.Thread | None = None
        self._stopping = threading.Event()
        self._listening = threading.Event()  # LISTEN is in force

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
        if self._listens and self._listener is None and not self._stopping.is_set():
            self._listener = threading.Thread(target=self._listen, name="console-feed", daemon=True)
            self._listener.start()
            # once per process, briefly: a board that opens before LISTEN is in force could
            # miss an event stored in between
            self._listening.wait(5.0)
        with self._stream.subscription() as queue:
            yield queue

    def posted(self, events: Sequence[AlertEvent]) -> None:
        """Events this process just committed (any thread). On PostgreSQL the store announces
        them to every process, this one included, so they come through the listener instead."""
        if not self._listens:
            self._publish(events)

    def _publish(self, events: Sequence[AlertEvent]) -> None:
        loop = self._loop
        if loop is None or not len(self._stream) or loop.is_closed():
            return  # nobody listens
        try:
            loop.call_soon_threadsafe(self._stream.publish, list(events))
        except RuntimeError:  # the loop closed between the check and the call (shutting down)
            _log.debug("console feed: loop closed, %d events not streamed", len(events))

    def _listen(self) -> None:
        """LISTEN on the store's channel; each notification's events go to the streams. After a
        lost connection every stream is ended, so the browsers reconnect and fetch their boards:
        nothing stored meanwhile stays off a board."""
        import psycopg  # the PostgreSQL driver: only when the store is PostgreSQL

        url = self._store.engine.url.set(drivername="postgresql")
        connected_before = False
        while not self._stopping.is_set():
            try:
                with psycopg.connect(
                    url.render_as_string(hide_password=False), autocommit=True
                ) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._listening.set()
                    if connected_before:
                        _log.info("console feed: listening again; open boards fetch themselves")
                        self._restart_streams()
                    connected_before = True
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            if note.channel == NOTIFY_CHANNEL and len(self._stream):
                                self._publish(self._store.events(note.payload.split("\n")))
            except (psycopg.Error, SQLAlchemyError, OSError) as exc:  # the database went away
                self._listening.clear()
                _log.warning("console feed: %s; listening again in 1 s", type(exc).__name__)
                self._stopping.wait(1.0)

    def _restart_streams(self) -> None:
        old, self._stream = self._stream, AlertStream()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(old.close)

    def close(self) -> None:
        """End every console stream (shutdown): the browsers reconnect to what comes next."""
        self._stopping.set()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._stream.close)
        if self._listener is not None:
            self._listener.join(5.0)
