"""Visits on disk and a month's visit status: due, overdue, visited, in the community's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.enrich import (
    Condition,
    Household,
    VisitSpec,
    VisitStatus,
    VisitStore,
    month_start,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 2026-12-01 00:30 in Shanghai is still November in UTC
EARLY_DECEMBER = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)


def _household(unit: str) -> Household:
    return Household.model_validate(
        {
            "community": "c",
            "building": "b1",
            "unit": unit,
            "care_worker": {"person_id": "wang-fang", "name": "王芳"},
        }
    )


@pytest.fixture
def visits(tmp_path: Path) -> VisitStore:
    return VisitStore(tmp_path / "visits.db")


def _visit(store: VisitStore, household: Household, at: datetime, **kw: object) -> None:
    spec = VisitSpec.model_validate({"at": at, "condition": "good", **kw})
    store.record(household, spec, worker="wang-fang", worker_name="王芳", recorded_by="t1", now=at)


def test_a_month_begins_at_midnight_in_the_communitys_zone() -> None:
    assert month_start(EARLY_DECEMBER, SHANGHAI) == datetime(2026, 12, 1, tzinfo=SHANGHAI)
    assert month_start(EARLY_DECEMBER, UTC) == datetime(2026, 11, 1, tzinfo=UTC)


def test_visited_due_and_overdue(visits: VisitStore) -> None:
    now = datetime(2026, 12, 20, 2, 0, tzinfo=UTC)
    visited, due, overdue, never = (_household(u) for u in ("1", "2", "3", "4"))
    _visit(visits, visited, now - timedelta(days=1))
    _visit(visits, visited, now - timedelta(days=40))
    _visit(visits, due, now - timedelta(days=25))  # November, within 30 days
    _visit(visits, overdue, now - timedelta(days=31))
    rows = visits.status([visited, due, overdue, never], now, SHANGHAI)
    assert [(r.household.unit, r.status, r.visits_this_month) for r in rows] == [
        ("3", VisitStatus.OVERDUE, 0),
        ("4", VisitStatus.OVERDUE, 0),
        ("2", VisitStatus.DUE, 0),
        ("1", VisitStatus.VISITED, 1),
    ]
    last = {r.household.unit: r.last_visit for r in rows}
    assert last["4"] is None
    assert last["1"] is not None
    assert last["1"].at == now - timedelta(days=1)


def test_a_visit_just_after_midnight_on_the_first_counts_for_the_new_month(
    visits: VisitStore,
) -> None:
    household = _household("1")
    _visit(visits, household, EARLY_DECEMBER)
    (row,) = visits.status([household], EARLY_DECEMBER + timedelta(hours=1), SHANGHAI)
    assert row.status is VisitStatus.VISITED
    (utc_row,) = visits.status([household], EARLY_DECEMBER + timedelta(hours=1), UTC)
    assert utc_row.visits_this_month == 1  # also November's in UTC


def test_visits_are_listed_newest_first_and_filtered(visits: VisitStore) -> None:
    now = datetime(2026, 12, 20, tzinfo=UTC)
    one, two = _household("1"), _household("2")
    _visit(visits, one, now - timedelta(days=2), condition="poor", note="膝盖疼", follow_up=True)
    _visit(visits, two, now - timedelta(days=1), alert_id="a-1")
    listed = visits.list()
    assert [v.household for v in listed] == ["c/b1/2", "c/b1/1"]
    assert listed[1].condition is Condition.POOR
    assert listed[1].follow_up
    assert listed[0].alert_id == "a-1"
    assert [v.household for v in visits.list(households=["c/b1/1"])] == ["c/b1/1"]
    assert visits.list(communities=[]) == []
    assert [v.household for v in visits.list(since=now - timedelta(days=1))] == ["c/b1/2"]
    assert [v.household for v in visits.list(until=now - timedelta(days=1))] == ["c/b1/1"]
    got = visits.get(listed[0].id)
    assert got == listed[0]


def test_many_households_are_looked_up_past_sqlites_parameter_limit(visits: VisitStore) -> None:
    now = datetime(2026, 12, 20, tzinfo=UTC)
    households = [_household(str(n)) for n in range(1200)]
    for household in households[::100]:
        _visit(visits, household, now - timedelta(days=1))
    rows = visits.status(households, now, SHANGHAI)
    assert sum(1 for r in rows if r.status is VisitStatus.VISITED) == 12
    assert sum(1 for r in rows if r.status is VisitStatus.OVERDUE) == 1188
