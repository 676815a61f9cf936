"""Where the API and the console read the embedded readings (a gateway without a time-series
server): this process's store, or under `run --shards N`, on shard 0, the store of the shard that
owns the device (gateway/shard_desk.py `ShardReadings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from edge.sinks import ReadingStore, StoredReading


@dataclass(frozen=True, slots=True)
class ReadingAnswer:
    """Readings newest first, and the shards that did not answer (their readings are missing)."""

    items: list[StoredReading]
    unanswered: list[str] = field(default_factory=list)


class ReadingSource:
    """The embedded store of this process."""

    def __init__(self, store: ReadingStore) -> None:
        self.store = store

    async def query(
        self,
        *,
        device_id: str | None = None,
        communities: Sequence[str] | None = None,
        category: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> ReadingAnswer:
        """Readings newest first (ReadingStore.query's filters)."""
        return ReadingAnswer(
            self.store.query(
                device_id=device_id,
                communities=communities,
                category=category,
                since=since,
                until=until,
                limit=limit,
            )
        )


def reading_source(readings: ReadingStore | ReadingSource | None) -> ReadingSource | None:
    """The source over `readings` (a bare store is this process's)."""
    return ReadingSource(readings) if isinstance(readings, ReadingStore) else readings
