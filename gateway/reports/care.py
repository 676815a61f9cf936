"""The monthly care report of one community: visits (target: every household at least once),
alerts raised and followed up (target: all) with the time to acknowledge and to arrive, by
category and by care worker, the sign-of-life alerts and how they ended, and the devices that went
offline or ran low on battery, per household.

Pure: built from the household register, the month's visits and the month's alerts, so the same
figures feed the console page, the CSV and the PDF (gateway/reports/pdf.py).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from edge.alerts import AlertPage
from edge.enrich import Household, Visit
from edge.model import Alert

# the rules whose alerts say a household showed no sign of life (edge/rules/place.py absence)
SIGN_OF_LIFE_CATEGORY = "household"
# device alerts that say a device in a home needs a hand: it went silent, or its battery is low
OFFLINE_RULES = frozenset({"device-offline", "meter-silent"})
BATTERY_RULES = frozenset({"low-battery"})
PEOPLE = frozenset({"rule", "device", "system"})  # actors that are not a person


class ReportError(ValueError):
    """A month or a community the report cannot be made for."""


def parse_month(text: str) -> tuple[int, int]:
    """`YYYY-MM` into (year, month); ReportError for anything else."""
    try:
        year, month = (int(part) for part in text.split("-"))
        date(year, month, 1)
    except ValueError:
        raise ReportError(f"month {text!r} must be YYYY-MM, e.g. 2026-11") from None
    if not 2000 <= year <= 2100:
        raise ReportError(f"month {text!r} is out of range")
    return year, month


def month_bounds(year: int, month: int, zone: tzinfo) -> tuple[datetime, datetime]:
    """The first instant of the month and of the next, in the community's time zone."""
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return start, end


@dataclass(frozen=True, slots=True)
class Figures:
    """Counts and response times of a group of alerts (one category, one worker, all)."""

    raised: int = 0
    followed_up: int = 0
    acknowledged: int = 0
    arrived: int = 0  # a visit was recorded for the alert
    cleared_by_itself: int = 0  # resolved by the device or the rule before any person acted
    median_ack_s: float | None = None
    median_arrive_s: float | None = None
    max_ack_s: float | None = None

    @property
    def follow_up_rate(self) -> float:
        return self.followed_up / self.raised if self.raised else 1.0


@dataclass(frozen=True, slots=True)
class WorkerLine:
    """One care worker's month."""

    worker: str  # person id
    name: str
    households: int
    visited: int  # of her households, visited at least once
    visits: int
    alerts: Figures  # alerts of her households


@dataclass(frozen=True, slots=True)
class InactivityLine:
    """One sign-of-life alert and how it ended."""

    household: str
    rule: str
    summary: str
    opened_at: datetime
    acknowledged_by: str | None
    ack_s: float | None
    arrive_s: float | None
    condition: str | None  # how the resident was found at the visit the alert called for
    outcome: str  # "open", "acknowledged", "resolved: <note>", "cleared: sign of life"


@dataclass(frozen=True, slots=True)
class DeviceLine:
    """A household's devices that went offline or ran low on battery in the month."""

    household: str
    offline: tuple[str, ...]
    low_battery: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HouseholdLine:
    """One household's month: a row of the CSV."""

    household: str
    worker: str
    visits: int
    last_condition: str | None
    raised: int
    followed_up: int
    inactivity: int
    offline: int
    low_battery: int
    away: str


@dataclass(frozen=True, slots=True)
class CareReport:
    """Everything the page, the CSV and the PDF show."""

    community: str
    year: int
    month: int
    zone: str
    generated_at: datetime
    households: int  # in the care programme (living alone, or with a care worker)
    visited: int
    not_visited: tuple[str, ...]  # household ids, for the worker to go to
    visits: int
    alerts: Figures
    by_category: dict[str, Figures]
    by_worker: tuple[WorkerLine, ...]
    inactivity: tuple[InactivityLine, ...]
    devices: tuple[DeviceLine, ...]
    alerts_per_day: tuple[int, ...]  # day 1.. of the month
    away: tuple[tuple[str, str], ...] = ()  # (household, "until ...: reason") at report time
    rows: tuple[HouseholdLine, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def visit_rate(self) -> float:
        return self.visited / self.households if self.households else 1.0

    @property
    def label(self) -> str:
        return f"{self.year}-{self.month:02d}"


def in_programme(household: Household) -> bool:
    """Households the care programme visits: living alone, or given a care worker."""
    return household.living_alone or household.care_worker is not None


def month_alerts(
    pages: Callable[[str | None], AlertPage], start: datetime, end: datetime
) -> list[Alert]:
    """Alerts opened in [start, end), read newest first page by page (`pages(cursor)`) until
    the first one opened before `start`."""
    out: list[Alert] = []
    cursor: str | None = None
    while True:
        page = pages(cursor)
        for alert in page.items:
            if alert.opened_at < start:
                return out
            if alert.opened_at < end:
                out.append(alert)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def build_report(
    community: str,
    year: int,
    month: int,
    zone: tzinfo,
    households: Iterable[Household],
    visits: Iterable[Visit],
    alerts: Iterable[Alert],
    now: datetime,
    *,
    homes_only: bool = False,
) -> CareReport:
    """The report of `community` for the month, from its register, visits and alerts.

    `homes_only`: only the alerts of the households given (a care worker's own report).
    """
    start, end = month_bounds(year, month, zone)
    homes = [h for h in households if h.community == community and in_programme(h)]
    by_unit = {(h.building, h.unit): h for h in homes}
    if homes_only:
        alerts = [a for a in alerts if a.unit is not None and (a.building, a.unit) in by_unit]
    month_visits = [v for v in visits if v.community == community and start <= v.at < end]
    visited_ids = {v.household for v in month_visits}
    arrivals: dict[str, datetime] = {}
    conditions: dict[str, str] = {}
    for visit in sorted(month_visits, key=lambda v: v.at):
        if visit.alert_id is not None and visit.alert_id not in arrivals:
            arrivals[visit.alert_id] = visit.at
            conditions[visit.alert_id] = visit.condition.value
    raised = [a for a in alerts if a.community == community and start <= a.opened_at < end]
    raised.sort(key=lambda a: a.opened_at)
    days = (end - start).days
    per_day = [0] * days
    for alert in raised:
        per_day[(alert.opened_at.astimezone(zone).date() - start.date()).days] += 1

    def household_of(alert: Alert) -> Household | None:
        return by_unit.get((alert.building, alert.unit)) if alert.unit else None

    by_category: dict[str, list[Alert]] = defaultdict(list)
    by_worker_alerts: dict[str, list[Alert]] = defaultdict(list)
    for alert in raised:
        by_category[alert.category].append(alert)
        home = household_of(alert)
        if home is not None and home.care_worker is not None:
            by_worker_alerts[home.care_worker.person_id].append(alert)
    workers: dict[str, tuple[str, list[Household]]] = {}
    for home in homes:
        if home.care_worker is not None:
            _, listed = workers.setdefault(home.care_worker.person_id, (home.care_worker.name, []))
            listed.append(home)
    visits_by_worker = Counter(v.worker for v in month_visits)
    worker_lines = tuple(
        WorkerLine(
            worker=person,
            name=name,
            households=len(listed),
            visited=sum(1 for h in listed if h.id in visited_ids),
            visits=visits_by_worker.get(person, 0),
            alerts=_figures(by_worker_alerts.get(person, []), arrivals),
        )
        for person, (name, listed) in sorted(workers.items())
    )
    rows = _rows(homes, month_visits, raised, arrivals, household_of, now, zone)
    inactivity = tuple(
        _inactivity(alert, household_of(alert), arrivals, conditions)
        for alert in raised
        if alert.category == SIGN_OF_LIFE_CATEGORY
    )
    return CareReport(
        community=community,
        year=year,
        month=month,
        zone=str(zone),
        generated_at=now,
        households=len(homes),
        visited=sum(1 for h in homes if h.id in visited_ids),
        not_visited=tuple(h.id for h in homes if h.id not in visited_ids),
        visits=len(month_visits),
        alerts=_figures(raised, arrivals),
        by_category={k: _figures(v, arrivals) for k, v in sorted(by_category.items())},
        by_worker=worker_lines,
        inactivity=inactivity,
        devices=_devices(raised, household_of),
        alerts_per_day=tuple(per_day),
        away=tuple(
            (h.id, f"{h.away_until.astimezone(zone):%Y-%m-%d %H:%M} {h.away_reason or ''}".strip())
            for h in homes
            if h.away_until is not None and h.is_away(now)
        ),
        rows=rows,
    )


def _rows(
    homes: Sequence[Household],
    visits: Sequence[Visit],
    alerts: Sequence[Alert],
    arrivals: dict[str, datetime],
    household_of: Callable[[Alert], Household | None],
    now: datetime,
    zone: tzinfo,
) -> tuple[HouseholdLine, ...]:
    visit_count = Counter(v.household for v in visits)
    condition = {v.household: v.condition.value for v in sorted(visits, key=lambda v: v.at)}
    of_home: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        home = household_of(alert)
        if home is not None:
            of_home[home.id].append(alert)
    lines = []
    for home in homes:
        mine = of_home.get(home.id, [])
        figures = _figures(mine, arrivals)
        away = ""
        if home.away_until is not None and home.is_away(now):
            away = f"{home.away_until.astimezone(zone):%Y-%m-%d} {home.away_reason or ''}".strip()
        lines.append(
            HouseholdLine(
                household=home.id,
                worker=home.care_worker.name if home.care_worker else "",
                visits=visit_count.get(home.id, 0),
                last_condition=condition.get(home.id),
                raised=figures.raised,
                followed_up=figures.followed_up,
                inactivity=sum(1 for a in mine if a.category == SIGN_OF_LIFE_CATEGORY),
                offline=len({a.device_id for a in mine if a.rule in OFFLINE_RULES}),
                low_battery=len({a.device_id for a in mine if a.rule in BATTERY_RULES}),
                away=away,
            )
        )
    return tuple(lines)


def _person(actor: str | None) -> bool:
    return actor is not None and actor not in PEOPLE


def _figures(alerts: Sequence[Alert], arrivals: dict[str, datetime]) -> Figures:
    acks = [
        (a.acknowledged_at - a.opened_at).total_seconds()
        for a in alerts
        if a.acknowledged_at is not None
    ]
    arrive = [(arrivals[a.id] - a.opened_at).total_seconds() for a in alerts if a.id in arrivals]
    followed = sum(
        1
        for a in alerts
        if a.acknowledged_at is not None or _person(a.resolved_by) or a.id in arrivals
    )
    by_itself = sum(
        1
        for a in alerts
        if a.resolved_at is not None
        and not _person(a.resolved_by)
        and a.acknowledged_at is None
        and a.id not in arrivals
    )
    return Figures(
        raised=len(alerts),
        followed_up=followed,
        acknowledged=len(acks),
        arrived=len(arrive),
        cleared_by_itself=by_itself,
        median_ack_s=statistics.median(acks) if acks else None,
        median_arrive_s=statistics.median(arrive) if arrive else None,
        max_ack_s=max(acks) if acks else None,
    )


def _inactivity(
    alert: Alert,
    home: Household | None,
    arrivals: dict[str, datetime],
    conditions: dict[str, str],
) -> InactivityLine:
    if alert.resolved_at is None:
        outcome = "acknowledged" if alert.acknowledged_at is not None else "open"
    elif _person(alert.resolved_by):
        outcome = f"resolved: {alert.note}" if alert.note else "resolved"
    else:
        outcome = "cleared: sign of life" if alert.resolved_by in PEOPLE else "cleared"
    arrived = arrivals.get(alert.id)
    return InactivityLine(
        household=home.id
        if home is not None
        else f"{alert.community}/{alert.building}/{alert.unit}",
        rule=alert.rule,
        summary=alert.summary,
        opened_at=alert.opened_at,
        acknowledged_by=alert.acknowledged_by,
        ack_s=None
        if alert.acknowledged_at is None
        else (alert.acknowledged_at - alert.opened_at).total_seconds(),
        arrive_s=None if arrived is None else (arrived - alert.opened_at).total_seconds(),
        condition=conditions.get(alert.id),
        outcome=outcome,
    )


def _devices(
    alerts: Sequence[Alert], household_of: Callable[[Alert], Household | None]
) -> tuple[DeviceLine, ...]:
    offline: dict[str, set[str]] = defaultdict(set)
    battery: dict[str, set[str]] = defaultdict(set)
    for alert in alerts:
        home = household_of(alert)
        if home is None:
            continue
        if alert.rule in OFFLINE_RULES:
            offline[home.id].add(alert.device_id)
        elif alert.rule in BATTERY_RULES:
            battery[home.id].add(alert.device_id)
    return tuple(
        DeviceLine(hid, tuple(sorted(offline.get(hid, ()))), tuple(sorted(battery.get(hid, ()))))
        for hid in sorted(offline.keys() | battery.keys())
    )


def duration(seconds: float | None) -> str:
    """A response time as people read it: 45 s, 12 min, 3 h 20 min, -."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min"
