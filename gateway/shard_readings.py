"""The embedded readings of every shard under `run --shards N`, as shard 0's API reads them.

Each shard writes its buildings' readings to the embedded store in its own data dir. A known
device's readings come from the shard that owns its building (a sibling's: one loopback request
through gateway/shard_link.py; 503 while it does not answer); any other query asks every shard
and merges their answers newest first, naming the siblings that did not answer.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from pathlib import Path

from edge.sinks import ReadingQuery, ReadingStore, StoredReading
from gateway.api.schemas import ReadingList
from gateway.reading_source import ReadingAnswer, ReadingSource
from gateway.shard_desk import ShardDesk
from gateway.shard_link import ShardUnavailable

_log = logging.getLogger(__name__)


class ShardReadings(ReadingSource):
    """The embedded readings of every shard, as shard 0's desk finds their owners."""

    def __init__(self, store: ReadingStore, desk: ShardDesk) -> None:
        """`store`: this shard's own; `desk`: shard 0's, which knows the siblings."""
        super().__init__(store)
        self._desk = desk

    async def query(self, query: ReadingQuery) -> ReadingAnswer:
        """Readings newest first: a known device's from the shard that owns its building, any
        other query's from every shard (see the module)."""
        if query.communities == ():
            return ReadingAnswer([])  # a caller who may see no community sees nothing
        shards = self._desk.shards_holding(query.device_id)
        if len(shards) == 1:
            return ReadingAnswer(await self._one(shards[0], query))

        async def answered(peer: Path | None) -> list[StoredReading] | None:
            try:
                return await self._one(peer, query)
            except ShardUnavailable as exc:
                _log.warning("readings without %s: %s", peer and peer.name, exc)
                return None

        found = await asyncio.gather(*(answered(p) for p in shards))
        merged = heapq.merge(
            *(items for items in found if items is not None), key=lambda r: r.at, reverse=True
        )
        return ReadingAnswer(
            list(merged)[: query.limit],
            [p.name for p, items in zip(shards, found, strict=True) if p and items is None],
        )

    async def _one(self, peer: Path | None, query: ReadingQuery) -> list[StoredReading]:
        """One shard's readings: this one's store (`peer` None), or a sibling's through its API."""
        if peer is None:
            return self.store.query(query)
        response = await self._desk.link.send(peer, "GET", "/v1/readings", params=query.params())
        if response.status_code != 200:
            raise ShardUnavailable(
                f"{peer.name} answered {response.status_code} for readings", shard=peer.name
            )
        return ReadingList.model_validate(response.json()).items
