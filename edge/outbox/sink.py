"""Where the outbox delivers: the Sink protocol that every destination implements.

A sink must be idempotent: the outbox delivers at least once, so the same alert event (same id) or
the same reading (same device, same timestamp) may arrive twice and must be stored once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from edge.model import AlertEvent, Lane, Reading


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
