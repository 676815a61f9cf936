"""The outbox's database thread: one thread, one SQLite connection, urgent jobs first.

One writer on purpose: two connections writing one SQLite file take turns on its lock, and
SQLite's busy handler makes the loser sleep (1, 2, 5, 10 ms ...) while the winner takes the lock
again: an alarm commit on a second connection waited up to 500 ms behind telemetry commits
here. Instead every job runs on this one thread, and an urgent job (the alarm lane's commit, a
fetch of alert events) waits only for the job running now, never for the queue.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

_T = TypeVar("_T")
_URGENT, _ORDINARY, _LAST = 0, 1, 2

_Job = tuple[Callable[[], Any], "Future[Any]"] | None


class PriorityWorker:
    """Runs submitted callables one at a time on its own thread, urgent ones first, each kind
    in the order submitted."""

    def __init__(self, name: str) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, _Job]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], _T], urgent: bool = False) -> Future[_T]:
        if self._closed:
            raise RuntimeError("the outbox worker is shut down")
        future: Future[_T] = Future()
        self._queue.put((_URGENT if urgent else _ORDINARY, next(self._order), (fn, future)))
        return future

    def shutdown(self, wait: bool = True) -> None:
        """Run what is queued, then stop."""
        if not self._closed:
            self._closed = True
            self._queue.put((_LAST, next(self._order), None))
        if wait:
            self._thread.join()

    def _serve(self) -> None:
        while True:
            _, _, job = self._queue.get()
            if job is None:
                return
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:  # handed to the caller, who awaits the future
                future.set_exception(exc)
            else:
                future.set_result(result)
