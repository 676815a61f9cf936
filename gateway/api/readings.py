"""Readings from the embedded store (a gateway without a time-series server)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from edge.sinks import ReadingQuery
from gateway.api.context import Readings
from gateway.api.errors import ERRORS
from gateway.api.schemas import DeviceIdQuery, IsoTime, ReadingList
from gateway.api.security import Caller

router = APIRouter(tags=["readings"])


@router.get("/v1/readings", responses=ERRORS)
async def list_readings(
    caller: Caller,
    readings: Readings,
    device_id: DeviceIdQuery | None = None,
    community: Annotated[list[str] | None, Query()] = None,
    category: str | None = None,
    since: IsoTime | None = None,
    until: IsoTime | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> ReadingList:
    """Readings newest first, from the embedded store (404 when a time-series server is used).

    `run --shards N`: a device's from the shard that owns it; without `device_id`, every shard's,
    and `unanswered` names a shard that did not answer in time.
    """
    if readings is None:
        raise HTTPException(
            status_code=404,
            detail="readings go to the configured time-series server; query it directly",
        )
    scope = caller.scope(community)
    if scope == []:
        return ReadingList(items=[])
    # the query ReadingQuery.params() names: shard 0 asks a sibling shard this way
    query = ReadingQuery(
        device_id=device_id,
        communities=scope,
        category=category,
        since=since,
        until=until,
        limit=limit,
    )
    answer = await readings.query(query)
    return ReadingList(items=answer.items, unanswered=answer.unanswered)
