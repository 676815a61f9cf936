"""An alert's moment: the device's readings ± a few minutes around it (charts and a table, from
the embedded reading store, or from the time-series server the readings go to instead) and the
rule that fired, checked against the reading that raised it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from markupsafe import Markup

from edge.agent import Desk
from edge.model import Alert, AlertEvent, AlertEventKind
from edge.sinks import ReadingQuery, StoredReading
from gateway.console.catalogue import Lang
from gateway.console.chart import Series, fitted, series_of, svg
from gateway.console.labels import field_label
from gateway.console.rule_trace import Trace, trace
from gateway.reading_source import ReadingSource
from gateway.shard_link import ShardUnavailable
from gateway.tsdb_readings import TsdbReadings, TsdbUnavailable

_log = logging.getLogger(__name__)
_SAME = timedelta(milliseconds=1)  # a reading's time as a store with milliseconds keeps it
_TSDB_LOOKBACK = timedelta(hours=1)  # how far back the reading that raised an alert is looked for

AROUND_MIN = (5, 10, 30, 60)  # the choices of "± minutes" the page offers
DEFAULT_AROUND_MIN = 10
MAX_READINGS = 2000  # a chatty device over an hour; the table shows the newest of them
TABLE_ROWS = 50


@dataclass(frozen=True, slots=True)
class Readings:
    """A device's readings over a window, drawn and listed."""

    stored: bool  # False: the gateway keeps no readings and knows no server to ask
    start: datetime
    end: datetime
    charts: list[tuple[Series, Markup]] = field(default_factory=list)
    rows: list[StoredReading] = field(default_factory=list)  # newest first, at most TABLE_ROWS
    count: int = 0
    # "store": the embedded reading store; "tsdb": the time-series server; "shard": another
    # shard's embedded store (run --shards N)
    source: str = "store"
    error: str | None = None  # the time-series server or the owning shard could not be read: why


async def _query(
    request: Request,
    device_id: str,
    community: str,
    category: str,
    start: datetime | None,
    end: datetime,
    limit: int,
) -> list[StoredReading] | None:
    """Readings newest first from the store or the time-series server; None: neither exists.

    Raises:
        TsdbUnavailable: the time-series server could not be read.
        ShardUnavailable: under `run --shards N`, the shard that owns the device did not answer.
    """
    store = reading_store(request)
    if store is not None:
        answer = await store.query(
            ReadingQuery(
                device_id=device_id, communities=(community,), since=start, until=end, limit=limit
            )
        )
        return answer.items
    tsdb = tsdb_readings(request)
    if tsdb is None:
        return None
    return await tsdb.query(
        device_id=device_id,
        community=community,
        category=category,
        since=start if start is not None else end - _TSDB_LOOKBACK,
        until=end,
        limit=limit,
    )


def reading_store(request: Request) -> ReadingSource | None:
    store = getattr(request.app.state, "readings", None)
    return store if isinstance(store, ReadingSource) else None


def tsdb_readings(request: Request) -> TsdbReadings | None:
    reader = getattr(request.app.state, "tsdb", None)
    return reader if isinstance(reader, TsdbReadings) else None


async def readings_of(
    request: Request,
    device_id: str,
    community: str,
    category: str,
    start: datetime,
    end: datetime,
    mark: datetime | None,
    words: dict[str, str],
    first: tuple[str, ...] = (),
    lang: Lang = "zh",
) -> Readings:
    """The device's readings from `start` to `end`, a chart per numeric field (`first` first)."""
    source = "store" if reading_store(request) is not None else "tsdb"
    try:
        found = await _query(request, device_id, community, category, start, end, MAX_READINGS)
    except (TsdbUnavailable, ShardUnavailable) as exc:
        _log.warning("readings of %s not read: %s", device_id, exc)
        # run --shards N: the embedded readings live in the shard that owns the building
        where = "shard" if isinstance(exc, ShardUnavailable) else source
        return Readings(True, start, end, source=where, error=str(exc))
    if found is None:
        return Readings(False, start, end)
    zone = request.app.state.zone
    drawn = series_of(((r.at, r.fields) for r in found), first)
    # around an alert the window is the point; over a device's day, the readings it has
    shown = start if mark is not None else fitted(start, end, drawn)
    charts = [
        (
            s,
            svg(
                s,
                shown,
                end,
                zone,
                mark,
                words["chart_of"].format(field=field_label(s.field, lang)),
            ),
        )
        for s in drawn
    ]
    return Readings(True, start, end, charts, found[:TABLE_ROWS], len(found), source)


def opening_seen(history: Sequence[AlertEvent]) -> datetime | None:
    """The time of the reading that opened the alert: its OPENED event's `last_seen_at` (later
    repeats move the alert's own `last_seen_at` on, so the alert alone does not say it)."""
    for event in history:
        if event.kind == AlertEventKind.OPENED:
            return event.alert.last_seen_at
    return None


async def _raising(
    request: Request, alert: Alert, seen: datetime | None = None
) -> StoredReading | None:
    """The reading that raised the alert: the one the alert's opening event names (`seen`);
    without it, the device's last one at its opening (a device's own clock may run a little
    ahead of the gateway's)."""
    if seen is None and alert.count == 1:
        seen = alert.last_seen_at
    try:
        if seen is not None:
            # stores keep milliseconds: the reading at `seen` may read up to 1 ms off it
            near = await _query(
                request,
                alert.device_id,
                alert.community,
                alert.category,
                seen - _SAME,
                seen + _SAME,
                10,
            )
            exact = [r for r in near or [] if abs(r.at - seen) <= _SAME]
            if exact:
                return min(exact, key=lambda r: abs(r.at - seen))
        before = await _query(
            request,
            alert.device_id,
            alert.community,
            alert.category,
            None,
            alert.opened_at + timedelta(seconds=2),
            10,
        )
    except TsdbUnavailable:
        return None  # the readings say why
    return before[0] if before else None  # newest first


async def moment(
    request: Request,
    alert: Alert,
    lang: Lang,
    words: dict[str, str],
    history: Sequence[AlertEvent] = (),
) -> dict[str, Any]:
    """The alert page's `readings`, `around`, `rule_trace` and `raising` (the reading checked,
    the one that opened the alert as its `history` names it)."""
    try:
        around = int(request.query_params.get("around", DEFAULT_AROUND_MIN))
    except ValueError:
        around = DEFAULT_AROUND_MIN
    if around not in AROUND_MIN:
        around = DEFAULT_AROUND_MIN
    desk = getattr(request.app.state, "desk", None)
    rule = desk.rule(alert.model, alert.rule, alert.device_id) if isinstance(desk, Desk) else None
    window = timedelta(minutes=around)
    first = tuple(sorted(rule.fields())) if rule is not None else ()
    readings = await readings_of(
        request,
        alert.device_id,
        alert.community,
        alert.category,
        alert.opened_at - window,
        alert.opened_at + window,
        alert.opened_at,
        words,
        first,
        lang,
    )
    raising = (
        await _raising(request, alert, opening_seen(history))
        if rule is not None and rule.kind != "offline"
        else None
    )
    found: Trace | None = None
    if rule is not None:
        heartbeat = desk.heartbeat_of(alert.model) if isinstance(desk, Desk) else None
        found = trace(rule, raising.fields if raising else None, lang, heartbeat)
    return {
        "readings": readings,
        "around": around,
        "around_choices": AROUND_MIN,
        "rule_trace": found,
        "raising": raising,
    }
