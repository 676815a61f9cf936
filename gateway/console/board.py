"""The alarm board's content: every open alert in the caller's scope, filtered, by severity then
age, with counters per severity and status. Pure over an alert source, so it is tested without a browser.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from edge.model import SEVERITY_RANK, Alert, AlertStatus, Severity
from gateway.console.open_alerts import OPEN, OpenAlerts, read_open
from gateway.console.source import AlertSource

# categories whose critical alerts are life-safety alarms: they sound until acknowledged
LIFE_SAFETY = frozenset({"sos", "smoke", "fire", "fall", "door"})
# rows drawn by default: the most urgent first, every open alert counted above them. Measured in
# chromium: a live refresh of 5,000 rows takes ~4 s, of 1,000 well under the board's 2 s promise;
# `all=1` draws every row (a person asks for it, and the page says how many are not drawn)
SHOWN = 1000


@dataclass(frozen=True, slots=True)
class Filters:
    """What the board is narrowed to; kept in the URL's query string."""

    community: str = ""
    building: str = ""
    category: str = ""
    severity: Severity | None = None
    status: AlertStatus | None = None
    all: bool = False  # draw every row, not only the SHOWN most urgent

    @classmethod
    def parse(cls, query: dict[str, str]) -> Filters:
        """From a query string; an unknown severity or status is ignored, not an error page."""
        severity = query.get("severity", "")
        status = query.get("status", "")
        return cls(
            community=query.get("community", "").strip()[:64],
            building=query.get("building", "").strip()[:64],
            category=query.get("category", "").strip()[:64],
            severity=Severity(severity) if severity in Severity.__members__.values() else None,
            status=AlertStatus(status) if status in OPEN else None,
            all=query.get("all") == "1",
        )

    def query(self, **override: str) -> str:
        """This filter as a query string, with some values replaced ("" drops one)."""
        values = {
            "community": self.community,
            "building": self.building,
            "category": self.category,
            "severity": self.severity.value if self.severity else "",
            "status": self.status.value if self.status else "",
            "all": "1" if self.all else "",
        }
        values.update(override)
        return urlencode({k: v for k, v in values.items() if v})


@dataclass(frozen=True, slots=True)
class Board:
    """The rows to show and the counters above them."""

    rows: list[Alert]  # the rows to draw
    matching: int  # how many open alerts match the filters (more than rows when capped)
    by_severity: dict[Severity, int]
    by_status: dict[AlertStatus, int]
    communities: list[str]
    buildings: list[str]
    categories: list[str]
    now: datetime
    # every unacknowledged life-safety alarm among the matching, drawn or not: they all sound
    # (the cap limits what is drawn, never what is heard)
    alarms: list[str] = field(default_factory=list)


def is_life_safety(alert: Alert) -> bool:
    return alert.severity is Severity.CRITICAL and alert.category in LIFE_SAFETY


def _urgency(alert: Alert) -> tuple[int, bool, datetime]:
    # most urgent first; within a severity the unacknowledged (nobody has it yet), then the one
    # waiting longest
    return (SEVERITY_RANK[alert.severity], alert.status is not AlertStatus.ACTIVE, alert.opened_at)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def row_order(alert: Alert) -> str:
    """The row's place as the page compares it when it puts one row in (static/board.js): this
    string ascending, then the alert id descending, is the order `gather` sorts by."""
    rank, taken, opened = _urgency(alert)
    return f"{rank:02d}{taken:d}{(opened - _EPOCH) // _MICROSECOND:017d}"


def gather(
    desk: AlertSource,
    scope: list[str] | None,
    filters: Filters,
    open_alerts: OpenAlerts | None = None,
) -> Board:
    """Every open alert of `scope` (None: all), however old: no time window hides an open alarm.

    Args:
        open_alerts: the open alerts kept between calls (None: read them now).
    """
    if filters.community:
        scope = [c for c in (scope or [filters.community]) if c == filters.community]
    found: list[Alert] = []
    if scope != []:
        found = read_open(desk, scope) if open_alerts is None else open_alerts.of(desk, scope)
    placed = [
        a
        for a in found
        if (not filters.building or a.building == filters.building)
        and (not filters.category or a.category == filters.category)
    ]
    rows = [
        a
        for a in placed
        if (filters.severity is None or a.severity is filters.severity)
        and (filters.status is None or a.status is filters.status)
    ]
    # ties (the same severity, status and opening time) newest id first, as the stores page
    # them: written out, so a row put in alone by the page lands where a whole board draws it
    rows.sort(key=lambda a: a.id, reverse=True)
    rows.sort(key=_urgency)
    severities = Counter(a.severity for a in placed)
    statuses = Counter(a.status for a in placed)
    return Board(
        rows=rows if filters.all else rows[:SHOWN],
        matching=len(rows),
        by_severity={s: severities.get(s, 0) for s in Severity},
        by_status={s: statuses.get(s, 0) for s in OPEN},
        communities=sorted({a.community for a in found}),
        buildings=sorted({a.building for a in found}),
        categories=sorted({a.category for a in found}),
        now=desk.now(),
        alarms=[a.id for a in rows if a.status is AlertStatus.ACTIVE and is_life_safety(a)],
    )
