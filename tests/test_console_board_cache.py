"""The board's open alerts are read whole once per scope, then followed event by event: after any
series of stored events the board is the one a fresh read draws, and a gap in the events (a
subscriber cut off, a closed stream) is a whole read again, never a stale board.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from edge.alerts import AlertPage, AlertStore, AlertStoreSink, AlertStream
from edge.model import Alert, AlertEvent, AlertEventKind, AlertStatus, Severity
from gateway.console.board import Board, Filters, gather
from gateway.console.open_alerts import OpenAlerts
from tests.central_factories import T0, moved, opened


class _Source:
    """The agent desk's reading surface over a real alert store and stream, counting whole reads
    (`alerts` calls) and single-alert reads."""

    def __init__(self, path: Path, queue_size: int = 1000, versioned: bool = True) -> None:
        self.store = AlertStore(path)
        self.stream = AlertStream(queue_size)
        self.sink = AlertStoreSink(self.store, self.stream)
        self.versioned = versioned
        self.reads = 0
        self.lookups = 0

    def store_events(self, *events: AlertEvent) -> None:
        self.sink.show(events)  # the express path: stored, then published

    def now(self) -> datetime:
        return T0 + timedelta(hours=1)

    def alerts(
        self,
        communities: list[str] | None,
        status: AlertStatus | None,
        severity: Severity | None,
        limit: int,
        cursor: str | None,
    ) -> AlertPage:
        self.reads += 1
        return self.store.list(
            communities=communities, status=status, severity=severity, limit=limit, cursor=cursor
        )

    def alert(self, alert_id: str) -> Alert | None:
        self.lookups += 1
        return self.store.get(alert_id)

    def history(self, alert_id: str) -> list[AlertEvent]:
        return self.store.history(alert_id)

    def subscription(self) -> AbstractContextManager[asyncio.Queue[AlertEvent | None]]:
        return self.stream.subscription()

    def alerts_version(self) -> int | None:
        return self.stream.published if self.versioned else None


_Make = Callable[..., _Source]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[_Make]:
    """Sources over stores of their own, closed after the test."""
    made: list[_Source] = []

    def _make(queue_size: int = 1000, versioned: bool = True) -> _Source:
        made.append(_Source(tmp_path / f"alerts-{len(made)}.db", queue_size, versioned))
        return made[-1]

    yield _make
    for source in made:
        source.store.close()


@pytest.fixture
def source(make: _Make) -> _Source:
    return make()


def _same(kept: Board, fresh: Board) -> None:
    assert [a.model_dump() for a in kept.rows] == [a.model_dump() for a in fresh.rows]
    assert (kept.matching, kept.by_severity, kept.by_status, kept.alarms) == (
        fresh.matching,
        fresh.by_severity,
        fresh.by_status,
        fresh.alarms,
    )
    assert (kept.communities, kept.buildings, kept.categories) == (
        fresh.communities,
        fresh.buildings,
        fresh.categories,
    )


def _repeated(event: AlertEvent, times: int, step: int) -> AlertEvent:
    alert = event.alert
    when = alert.updated_at + timedelta(seconds=times)
    return AlertEvent(
        id=f"evt-{alert.id}-repeated-{step}",
        kind=AlertEventKind.REPEATED,
        at=when,
        actor="device",
        alert=alert.model_copy(
            update={
                "count": alert.count + times,
                "updated_at": when,
                "last_seen_at": when,
                "revision": alert.revision + times,
            }
        ),
    )


def _next(event: AlertEvent, kind: AlertEventKind, after_s: float) -> AlertEvent:
    later = moved(event, kind, after_s)
    revised = later.alert.model_copy(update={"revision": event.alert.revision + 1})
    return later.model_copy(update={"alert": revised})


SCOPES: list[list[str] | None] = [None, ["c1"], ["c2"], ["c1", "c2"], ["c3"]]
FILTERS = [
    Filters(),
    Filters(community="c2"),
    Filters(building="b2"),
    Filters(category="smoke"),
    Filters(severity=Severity.WARNING),
    Filters(status=AlertStatus.ACKNOWLEDGED),
]


@pytest.mark.parametrize("seed", range(4))
def test_the_board_after_a_series_of_events_is_a_fresh_read(source: _Source, seed: int) -> None:
    """Opened, repeated, acknowledged, resolved, a replayed event and a late one of a lower
    revision, over three communities: after each step every scope and filter kept is the board
    a fresh read draws, scoped, filtered and capped alike."""
    rng = random.Random(seed)
    kept = OpenAlerts()
    latest: dict[str, AlertEvent] = {}  # each alert's newest event
    stale: list[AlertEvent] = []  # events overtaken by a later one of the same alert
    for step in range(160):
        roll = rng.random()
        still_open = [e for e in latest.values() if e.alert.status is not AlertStatus.RESOLVED]
        if roll < 0.4 or not latest:
            event = opened(
                step,
                rng.choice(["c1", "c2", "c3"]),
                building=rng.choice(["b1", "b2"]),
                severity=rng.choice(list(Severity)),
                category=rng.choice(["sos", "smoke", "door"]),
                rule=rng.choice(["sos", "smoke"]),
            )
            latest[event.alert.id] = event
        elif roll < 0.5:
            event = rng.choice(list(latest.values()))  # replayed: ignored by its id
        elif roll < 0.6 and stale:
            # a lower revision's event coming late (stored; its alert's row is not replaced)
            late = stale.pop(rng.randrange(len(stale)))
            event = late.model_copy(update={"id": f"{late.id}-late-{step}"})
        elif still_open:
            last = rng.choice(still_open)
            how = rng.random()
            if how < 0.4:
                event = _repeated(last, rng.randint(1, 3), step)
            elif how < 0.7 and last.alert.status is AlertStatus.ACTIVE:
                event = _next(last, AlertEventKind.ACKNOWLEDGED, step)
            else:
                event = _next(last, AlertEventKind.RESOLVED, step)
            stale.append(last)
            latest[event.alert.id] = event
        else:
            continue
        source.store_events(event)
        if step % 4 == 0:
            for scope in SCOPES:
                for filters in FILTERS:
                    _same(gather(source, scope, filters, kept), gather(source, scope, filters))


def test_events_are_followed_not_read_whole_again(source: _Source) -> None:
    kept = OpenAlerts()
    first = [opened(n, "c1") for n in range(50)]
    source.store_events(*first)
    for _ in range(3):  # screens fetching the board: one whole read (active, acknowledged)
        assert gather(source, None, Filters(), kept).matching == 50
    assert source.reads == 2
    assert gather(source, ["c1"], Filters(), kept).matching == 50  # another scope: its own read
    assert source.reads == 4

    source.store_events(opened(50, "c1"), _next(first[0], AlertEventKind.RESOLVED, 5))
    source.store_events(_next(first[1], AlertEventKind.ACKNOWLEDGED, 5))
    assert gather(source, None, Filters(), kept).matching == 50
    board = gather(source, ["c1"], Filters(status=AlertStatus.ACKNOWLEDGED), kept)
    assert [a.id for a in board.rows] == ["c1-1"]
    assert source.reads == 4  # no whole read again: the three alerts that changed, by id
    assert source.lookups == 3

    source.store_events(opened(51, "c2"))  # outside the scope of c1 alone
    assert gather(source, ["c1"], Filters(), kept).matching == 50
    assert gather(source, None, Filters(), kept).matching == 51
    assert source.reads == 4


def test_a_subscriber_cut_off_reads_whole_again(make: _Make) -> None:
    source, kept = make(queue_size=5), OpenAlerts()
    source.store_events(opened(0, "c1"))
    assert gather(source, None, Filters(), kept).matching == 1
    reads = source.reads
    for n in range(1, 10):  # more than its queue holds while nobody fetches the board
        source.store_events(opened(n, "c1"))
    assert len(source.stream) == 0  # the stream cut it off
    assert gather(source, None, Filters(), kept).matching == 10
    assert source.reads == reads + 2  # read whole again
    source.store_events(opened(10, "c1"))  # and followed again from there
    assert gather(source, None, Filters(), kept).matching == 11
    assert source.reads == reads + 2


def test_a_closed_stream_is_read_every_time(source: _Source) -> None:
    kept = OpenAlerts()
    source.store_events(opened(0, "c1"))
    assert gather(source, None, Filters(), kept).matching == 1
    source.stream.close()  # the agent stops
    source.store.apply([opened(1, "c1")])  # stored, never published
    assert gather(source, None, Filters(), kept).matching == 2
    assert gather(source, None, Filters(), kept).matching == 2
    assert source.reads == 6


def test_a_source_without_a_version_is_read_every_time(make: _Make) -> None:
    source, kept = make(versioned=False), OpenAlerts()
    source.store_events(opened(0, "c1"))
    gather(source, None, Filters(), kept)
    gather(source, None, Filters(), kept)
    assert source.reads == 4
    assert len(source.stream) == 0  # nothing followed


def test_closing_stops_following(source: _Source) -> None:
    kept = OpenAlerts()
    gather(source, None, Filters(), kept)
    assert len(source.stream) == 1
    kept.close()
    assert len(source.stream) == 0


def test_a_version_the_events_do_not_account_for_reads_whole_again(source: _Source) -> None:
    kept = OpenAlerts()
    source.store_events(opened(0, "c1"))
    assert gather(source, None, Filters(), kept).matching == 1
    source.store.apply([opened(1, "c1")])  # stored, and counted, but its event never came
    source.stream.published += 1
    assert gather(source, None, Filters(), kept).matching == 2
    assert source.reads == 4
