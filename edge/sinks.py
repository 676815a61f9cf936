"""Where the outbox delivers: the Sink protocol, and MemorySink for unit tests.

A sink must be idempotent: the outbox delivers at least once, so the same alert event (same id) or
the same reading (same device, same timestamp) may arrive twice and must be stored once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from edge.model import AlertEvent, Reading

Lane = Literal["events", "readings"]


class Sink(Protocol):
    """A destination for outbox entries.

    `write_*` raises `SinkUnavailable` when the batch should be retried later (network, 5xx,
    timeout) and `SinkRejected` when the batch is invalid (4xx) and retrying cannot help.
    """

    name: str
    lanes: frozenset[Lane]

    async def write_events(self, events: Sequence[AlertEvent]) -> None: ...

    async def write_readings(self, readings: Sequence[Reading]) -> None: ...

    async def close(self) -> None: ...


class MemorySink:
    """Keeps what would have been written; for pure unit tests only."""

    def __init__(self, name: str = "memory", lanes: frozenset[Lane] | None = None) -> None:
        self.name = name
        self.lanes: frozenset[Lane] = lanes or frozenset({"events", "readings"})
        self.events: list[AlertEvent] = []
        self.readings: list[Reading] = []

    async def write_events(self, events: Sequence[AlertEvent]) -> None:
        self.events.extend(events)

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        self.readings.extend(readings)

    async def close(self) -> None:
        return None
