"""The outbox's database thread: urgent jobs go before queued ones; errors reach the caller."""

from __future__ import annotations

import functools
import threading

import pytest

from edge.outbox.worker import PriorityWorker


def test_an_urgent_job_waits_only_for_the_job_running_now() -> None:
    worker = PriorityWorker("test-outbox")
    running = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def blocker() -> None:
        running.set()
        release.wait(10)
        order.append("running")

    worker.submit(blocker)
    assert running.wait(10)
    queued = [worker.submit(functools.partial(order.append, f"ordinary {n}")) for n in range(3)]
    urgent = [
        worker.submit(functools.partial(order.append, f"urgent {n}"), urgent=True) for n in range(2)
    ]
    release.set()
    for future in [*queued, *urgent]:
        future.result(10)
    assert order == ["running", "urgent 0", "urgent 1", "ordinary 0", "ordinary 1", "ordinary 2"]
    worker.shutdown()


def test_an_error_reaches_the_caller_and_the_worker_goes_on() -> None:
    worker = PriorityWorker("test-outbox")

    def fail() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        worker.submit(fail).result(10)
    assert worker.submit(lambda: 42).result(10) == 42
    worker.shutdown()


def test_shutdown_runs_what_is_queued_then_refuses_more() -> None:
    worker = PriorityWorker("test-outbox")
    done: list[int] = []
    for n in range(5):
        worker.submit(functools.partial(done.append, n))
    worker.shutdown(wait=True)
    assert done == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError, match="shut down"):
        worker.submit(lambda: None)
