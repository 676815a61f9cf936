"""Where the API and the console read the embedded readings (a gateway without a time-series
server): this process's store, or under `run --shards N`, on shard 0, the store of the shard that
owns the device (gateway/shard_readings.py `ShardReadings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.sinks import ReadingQuery, ReadingStore, StoredReading


@dataclass(frozen=True, slots=True)
class ReadingAnswer:
    """Readings newest first, and the shards that did not answer (their readings are missing)."""

    items: list[StoredReading]
    unanswered: list[str] = field(default_factory=list)


class ReadingSource:
    """The embedded store of this process."""

    def __init__(self, store: ReadingStore) -> None:
        self.store = store

    async def query(self, query: ReadingQuery) -> ReadingAnswer:
        """Readings newest first."""
        return ReadingAnswer(self.store.query(query))


def reading_source(readings: ReadingStore | ReadingSource | None) -> ReadingSource | None:
    """The source over `readings` (a bare store is this process's)."""
    return ReadingSource(readings) if isinstance(readings, ReadingStore) else readings
