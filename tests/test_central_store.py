"""The central alert store on both dialects: a real PostgreSQL (fixture) and a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from edge.alerts import InvalidCursor
from edge.model import AlertEventKind, AlertStatus, Severity
from gateway.central.database import create_store_engine, current, head, upgrade
from gateway.central.schema import metadata
from gateway.central.store import AlertFilter, CentralStore, Durations
from tests.central_factories import T0, moved, opened


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'central.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[CentralStore]:
    engine = create_store_engine(store_url)
    upgrade(engine)
    central = CentralStore(engine)
    yield central
    central.close()


def test_migrations_upgrade_an_empty_database_to_the_schema(store_url: str) -> None:
    engine = create_store_engine(store_url)
    try:
        assert current(engine) is None
        assert inspect(engine).get_table_names() == []
        assert upgrade(engine) == head() == "0001"
        assert current(engine) == "0001"
        assert upgrade(engine) == "0001"  # again: nothing to do
        assert sorted(inspect(engine).get_table_names()) == [
            "alembic_version",
            "alert_events",
            "alerts",
        ]
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
        assert differences == []  # the migration builds exactly what schema.py declares
    finally:
        engine.dispose()


def test_the_same_batch_twice_is_stored_once(store: CentralStore) -> None:
    batch = [opened(n) for n in range(10)]
    first = store.apply(batch, gateway="gw-a")
    again = store.apply(batch, gateway="gw-a")
    overlapping = store.apply([*batch[5:], opened(10), opened(10)], gateway="gw-a")
    assert (first.stored, first.duplicates) == (10, 0)
    assert (again.stored, again.duplicates) == (0, 10)
    assert (overlapping.stored, overlapping.duplicates) == (1, 6)
    assert store.count() == 11
    assert store.count_events() == 11


def test_events_out_of_order_keep_the_newest_state(store: CentralStore) -> None:
    first = opened(1)
    ack = moved(first, AlertEventKind.ACKNOWLEDGED, 30)
    resolved = moved(ack, AlertEventKind.RESOLVED, 90)
    store.apply([resolved], gateway="gw-a")
    store.apply([first, ack], gateway="gw-a")  # older, arriving later: the state stays
    alert = store.get("c1-1", ["c1"])
    assert alert is not None
    assert alert.status is AlertStatus.RESOLVED
    assert [e.kind for e in store.history("c1-1", ["c1"])] == ["opened", "acknowledged", "resolved"]
    other = opened(2)
    store.apply([moved(other, AlertEventKind.ACKNOWLEDGED, 5), other], gateway="gw-a")
    second = store.get("c1-2", None)
    assert second is not None
    assert second.status is AlertStatus.ACKNOWLEDGED  # one batch, newest first: still newest


def test_a_query_never_reaches_outside_its_communities(store: CentralStore) -> None:
    store.apply([opened(n, "A") for n in range(3)] + [opened(n, "B") for n in range(4)], "gw")
    assert store.get("B-1", ["A"]) is None
    assert store.history("B-1", ["A"]) == []
    assert store.get("B-1", ["B"]) is not None
    assert store.community_of("B-1") == "B"
    assert {a.id for a in store.list_alerts(AlertFilter(["A"]), limit=100).items} == {
        "A-0",
        "A-1",
        "A-2",
    }
    assert store.list_alerts(AlertFilter([]), limit=100).items == []
    assert len(store.list_alerts(AlertFilter(None), limit=100).items) == 7
    assert len(store.list_alerts(AlertFilter(["A", "B", "C"]), limit=100).items) == 7


def test_filters(store: CentralStore) -> None:
    events = [
        opened(0, building="b1", severity=Severity.CRITICAL),
        opened(1, building="b2", severity=Severity.MAJOR, rule="smoke", category="smoke"),
        opened(2, building="b2", severity=Severity.WARNING, rule="smoke", category="smoke"),
        opened(3, building="b1", severity=Severity.CRITICAL, rule="fall", category="fall"),
    ]
    store.apply([*events, moved(events[3], AlertEventKind.ACKNOWLEDGED, 1)], "gw")

    def ids(**wanted: object) -> list[str]:
        page = store.list_alerts(AlertFilter(["c1"], **wanted), limit=100)  # type: ignore[arg-type]
        return [a.id for a in page.items]

    assert ids() == ["c1-3", "c1-2", "c1-1", "c1-0"]
    assert ids(building="b2") == ["c1-2", "c1-1"]
    assert ids(severity=Severity.CRITICAL) == ["c1-3", "c1-0"]
    assert ids(status=AlertStatus.ACKNOWLEDGED) == ["c1-3"]
    assert ids(rule="smoke") == ["c1-2", "c1-1"]
    assert ids(category="fall") == ["c1-3"]
    assert ids(since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=3)) == [
        "c1-2",
        "c1-1",
    ]
    assert ids(building="b2", severity=Severity.MAJOR) == ["c1-1"]


@pytest.mark.parametrize("communities", [["c1"], ["c1", "c2"], None])
def test_pagination_is_stable_under_inserts(
    store: CentralStore, communities: list[str] | None
) -> None:
    def community(n: int) -> str:
        return "c1" if n % 3 else "c2"

    def visible(ids: list[str]) -> set[str]:
        return {i for i in ids if communities is None or i.split("-")[0] in communities}

    originals = [opened(n, community(n)) for n in range(100, 130)]
    store.apply(originals, "gw")
    in_scope = sorted(visible([e.alert.id for e in originals]), key=lambda i: -int(i[3:]))
    page = store.list_alerts(AlertFilter(communities), limit=10)
    seen = [a.id for a in page.items]
    assert seen == in_scope[:10]
    newer = [opened(n, community(n)) for n in range(200, 205)]
    older = [opened(n, community(n)) for n in range(3)]  # opened before all others: late arrivals
    store.apply(newer + older, "gw")
    cursor = page.next_cursor
    while cursor is not None:
        page = store.list_alerts(AlertFilter(communities), limit=10, cursor=cursor)
        seen += [a.id for a in page.items]
        cursor = page.next_cursor
    expected = visible([e.alert.id for e in originals + older])
    assert len(seen) == len(set(seen)) == len(expected)  # no alert twice, none skipped
    assert set(seen) == expected
    assert len(expected) == (22 if communities == ["c1"] else 33)


def test_a_cursor_the_store_did_not_issue_is_refused(store: CentralStore) -> None:
    for bad in ("nonsense", "MTIz", "-1:x"):
        with pytest.raises(InvalidCursor):
            store.list_alerts(AlertFilter(None), cursor=bad)


def test_summaries_count_open_alerts_and_response_times(store: CentralStore) -> None:
    alerts = [opened(n) for n in range(1, 5)] + [opened(5, severity=Severity.MAJOR)]
    acks = [moved(a, AlertEventKind.ACKNOWLEDGED, 10 * n) for n, a in enumerate(alerts[:4], 1)]
    resolved = [moved(acks[0], AlertEventKind.RESOLVED, 100)]
    resolved.append(moved(acks[1], AlertEventKind.RESOLVED, 200))
    other = [opened(1, "c2", severity=Severity.MINOR)]
    store.apply(alerts + acks + resolved + other, "gw")
    [c1] = store.summaries(["c1"])
    assert c1.community == "c1"
    assert c1.open_by_severity == {"critical": 2, "major": 1}
    assert c1.time_to_acknowledge == Durations(4, 25.0, 37.0)
    assert c1.time_to_resolve == Durations(2, 150.0, 190.0)
    both = store.summaries(None)
    assert [s.community for s in both] == ["c1", "c2"]
    assert both[1].open_by_severity == {"minor": 1}
    assert both[1].time_to_acknowledge == Durations(0, None, None)
    late = store.summaries(["c1"], since=T0 + timedelta(seconds=3))
    assert late[0].time_to_acknowledge == Durations(2, 35.0, 39.0)
    assert store.summaries([]) == []
