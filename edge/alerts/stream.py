"""The live alert stream: alert events fan out to every subscriber once they are stored.

Each subscriber has a bounded queue. A subscriber that falls that far behind is cut off with an
`overflow` marker rather than slowing the agent down; it reconnects and lists what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence

from edge.model import AlertEvent

_log = logging.getLogger(__name__)

OVERFLOW = None  # what a cut-off subscriber receives last


class AlertStream:
    """Publish stored alert events; subscribe to receive them as they come."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[AlertEvent | None]] = set()
        self.overflows = 0
        self.closed = False
        # events published since start: a reader that caches what the store holds compares it
        self.published = 0

    def close(self) -> None:
        """End every subscription (shutdown): each queue receives a final None."""
        self.closed = True
        for queue in self._subscribers:
            queue.put_nowait(None)
        self._subscribers.clear()

    def __len__(self) -> int:
        return len(self._subscribers)

    def publish(self, events: Sequence[AlertEvent]) -> None:
        self.published += len(events)
        for queue in list(self._subscribers):
            for event in events:
                if queue.qsize() >= self._queue_size - 1:
                    self._subscribers.discard(queue)
                    queue.put_nowait(OVERFLOW)
                    self.overflows += 1
                    _log.warning(
                        "alert stream subscriber fell %d events behind: cut off", self._queue_size
                    )
                    break
                queue.put_nowait(event)

    @contextlib.contextmanager
    def subscription(self) -> Iterator[asyncio.Queue[AlertEvent | None]]:
        """A queue of events as they are stored; a None in it means the subscriber was cut off."""
        queue: asyncio.Queue[AlertEvent | None] = asyncio.Queue()
        if self.closed:
            queue.put_nowait(None)
        else:
            self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
