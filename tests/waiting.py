"""Waiting on a condition instead of sleeping: `wait_until` polls until the condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 20.0, what: str = "condition", poll: float = 0.05
) -> T:
    """Poll `predicate()` until it returns something truthy and return that value.

    Fails with an AssertionError naming `what` and the last value seen when `timeout` seconds
    pass first, so a red test says what it was waiting for.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s (last: {value!r})")
        time.sleep(poll)


async def eventually(
    predicate: Callable[[], T], within_s: float = 20.0, what: str = "condition", poll: float = 0.005
) -> T:
    """`wait_until` for async tests: polls without blocking the event loop the code runs on."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {within_s} s (last: {value!r})")
        await asyncio.sleep(poll)
