"""MemorySink: keeps what would have been written; for pure unit tests only."""

from __future__ import annotations

from collections.abc import Sequence

from edge.model import AlertEvent, Lane, Reading


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
