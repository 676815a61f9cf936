"""The board's open alerts, kept per scope and brought up to date by the alert events stored since,
instead of being read again after each of them. Pure over an alert source: tested without a browser.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager

from edge.model import Alert, AlertEvent, AlertStatus
from gateway.console.source import AlertSource

OPEN = (AlertStatus.ACTIVE, AlertStatus.ACKNOWLEDGED)
_PAGE = 500  # the store's page size while reading


def read_open(source: AlertSource, scope: list[str] | None) -> list[Alert]:
    """Every open alert of `scope` (None: all communities) as the source holds it now."""
    found: list[Alert] = []
    for status in OPEN:
        cursor: str | None = None
        while True:
            page = source.alerts(scope, status, None, _PAGE, cursor)
            found.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
    return found


class OpenAlerts:
    """Every open alert of a scope, read from the source once, then followed event by event.

    Each screen fetches the board (or a row of it) on every alert event; with thousands of open
    alerts a whole read (a JSON document per alert) was most of the cost, paid on the agent's event
    loop. So the alerts are kept per scope, and the alert events stored since (the source's own
    stream, drained at the next call) say which alerts changed: those alone are read again, by id,
    and put in, replaced or taken out. The store's row, not the event's copy, is what is kept: the
    store keeps the higher revision of events applied out of order, and so does this.

    Kept only while sure: every stored event moves the source's `alerts_version` by one, and
    the events drained must account for all of it. A gap (this subscriber cut off, the stream
    closing, a count that does not add up) drops everything kept, and each scope is read whole
    again. A source without a version (central) is read every time, as is an idle console's
    first board after a cut-off (the stream cuts off a subscriber 1,000 events behind).
    """

    _SCOPES = 32  # distinct scopes kept (people, filters by community); more: start again

    def __init__(self) -> None:
        self._feed: AbstractContextManager[asyncio.Queue[AlertEvent | None]] | None = None
        self._events: asyncio.Queue[AlertEvent | None] | None = None
        self._version = 0  # the source's version the kept alerts stand at
        self._by_scope: dict[frozenset[str] | None, dict[str, Alert]] = {}

    def of(self, source: AlertSource, scope: list[str] | None) -> list[Alert]:
        """The open alerts of `scope` (None: all communities) as the source holds them now."""
        version = source.alerts_version()
        if version is None:
            self.close()
            return read_open(source, scope)
        self._follow(source, version)
        key = None if scope is None else frozenset(scope)
        kept = self._by_scope.get(key)
        if kept is None:
            found = read_open(source, scope)
            if source.alerts_version() != version:  # stored while reading: not kept
                return found
            if len(self._by_scope) >= self._SCOPES:
                self._by_scope.clear()
            kept = self._by_scope[key] = {a.id: a for a in found}
        return list(kept.values())

    def close(self) -> None:
        """Stop following the source; everything kept is dropped."""
        self._by_scope.clear()
        self._events = None
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.__exit__(None, None, None)

    def _follow(self, source: AlertSource, version: int) -> None:
        """Bring every kept scope to `version` by the events stored since, or drop them all."""
        if self._events is None:
            self._start(source, version)
            return
        changed: dict[str, str] = {}  # alert id -> its community, in the order they changed
        seen = self._version
        while True:
            try:
                event = self._events.get_nowait()
            except asyncio.QueueEmpty:
                break
            if event is None:  # cut off, or the stream closed: what came since is unknown
                self._start(source, version)
                return
            seen += 1
            changed[event.alert.id] = event.alert.community
        if seen != version:  # events stored that did not come: unsure of them
            self._start(source, version)
            return
        self._version = version
        if not self._by_scope:
            return
        for alert_id, community in changed.items():
            stored = source.alert(alert_id)  # the store's row: the higher revision won there
            for key, kept in self._by_scope.items():
                if key is not None and community not in key:
                    continue
                if stored is not None and stored.status in OPEN:
                    kept[alert_id] = stored
                else:
                    kept.pop(alert_id, None)

    def _start(self, source: AlertSource, version: int) -> None:
        """Follow the source from `version` on, with nothing kept (every scope is read whole)."""
        self.close()
        feed = source.subscription()
        self._events = feed.__enter__()
        self._feed = feed
        self._version = version
        if self._events.qsize():  # only a closed stream (the agent stops) fills a new
            # subscription, with its None: follow nothing, read every time
            self.close()
