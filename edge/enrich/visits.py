"""Visits (探访): a care worker's visit to a household, and which households are due or overdue.

City programmes ask that every living-alone household with a care worker is visited at least once
a calendar month (in the community's time zone). A household not yet visited this month is *due*;
one whose last visit is longer ago than `overdue_days` (or that was never visited) is *overdue*
and is highlighted. Visits live in DATA_DIR/visits.db (mode 0600): the note is personal data.
"""

from __future__ import annotations

import builtins
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from edge.database import open_or_set_aside
from edge.enrich.households import Household
from edge.model import epoch_ms

OVERDUE_DAYS = 30  # a month and a day without a visit is late whatever the calendar says

_SCHEMA = """
CREATE TABLE IF NOT EXISTS visits (
    id TEXT PRIMARY KEY, household TEXT NOT NULL, community TEXT NOT NULL,
    worker TEXT NOT NULL, at_ms INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS visits_by_household ON visits (household, at_ms);
CREATE INDEX IF NOT EXISTS visits_by_worker ON visits (worker, at_ms);
CREATE INDEX IF NOT EXISTS visits_by_community ON visits (community, at_ms);
"""


class Condition(StrEnum):
    """How the resident was found."""

    GOOD = "good"  # 良好
    FAIR = "fair"  # 一般
    POOR = "poor"  # 较差
    NOT_HOME = "not_home"  # 未见到本人


class VisitStatus(StrEnum):
    """Where a household stands in this month's visits."""

    VISITED = "visited"  # visited at least once this month
    DUE = "due"  # not yet this month
    OVERDUE = "overdue"  # never visited, or the last visit is more than `overdue_days` ago


class VisitSpec(BaseModel):
    """What a care worker records: when, how the resident is, a note, whether to follow up."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    at: AwareDatetime
    condition: Condition
    note: str = Field(default="", max_length=500)
    follow_up: bool = False
    alert_id: str | None = Field(default=None, max_length=128)  # a visit an alert called for


class Visit(VisitSpec):
    """A recorded visit."""

    id: str
    household: str  # community/building/unit
    community: str
    worker: str  # the person id of who visited
    worker_name: str
    recorded_at: AwareDatetime
    recorded_by: str  # the token id that recorded it


@dataclass(frozen=True, slots=True)
class HouseholdVisits:
    """One household's place in a month's visits."""

    household: Household
    status: VisitStatus
    visits_this_month: int
    last_visit: Visit | None


class VisitStore:
    """Recorded visits on disk; thread-safe. Visits are never edited: a correction is a new one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn, self.problem = open_or_set_aside(path, _SCHEMA, "visit log")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def record(
        self,
        household: Household,
        spec: VisitSpec,
        *,
        worker: str,
        worker_name: str,
        recorded_by: str,
        now: datetime,
    ) -> Visit:
        """Store a visit to `household` by `worker` (a person id)."""
        visit = Visit(
            **spec.model_dump(),
            id="v-" + secrets.token_hex(8),
            household=household.id,
            community=household.community,
            worker=worker,
            worker_name=worker_name,
            recorded_at=now,
            recorded_by=recorded_by,
        )
        with self._lock:
            self._conn.execute(
                "INSERT INTO visits (id, household, community, worker, at_ms, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    visit.id,
                    visit.household,
                    visit.community,
                    worker,
                    epoch_ms(visit.at),
                    visit.model_dump_json(),
                ),
            )
        return visit

    def get(self, visit_id: str) -> Visit | None:
        with self._lock:
            row = self._conn.execute("SELECT body FROM visits WHERE id = ?", (visit_id,)).fetchone()
        return None if row is None else Visit.model_validate_json(row[0])

    def list(
        self,
        *,
        households: Iterable[str] | None = None,
        communities: Iterable[str] | None = None,
        worker: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> builtins.list[Visit]:
        """Visits newest first, filtered (None: no filter); `since` inclusive, `until` exclusive."""
        where: list[str] = []
        args: list[object] = []
        for column, values in (("household", households), ("community", communities)):
            if values is not None:
                wanted = sorted(set(values))
                if not wanted:
                    return []
                where.append(f"{column} IN ({','.join('?' * len(wanted))})")
                args.extend(wanted)
        if worker is not None:
            where.append("worker = ?")
            args.append(worker)
        if since is not None:
            where.append("at_ms >= ?")
            args.append(epoch_ms(since))
        if until is not None:
            where.append("at_ms < ?")
            args.append(epoch_ms(until))
        sql = "SELECT body FROM visits"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at_ms DESC, rowid DESC LIMIT ?"  # a tie: the later recorded first
        args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [Visit.model_validate_json(r[0]) for r in rows]

    def last_visits(self, households: Iterable[str]) -> dict[str, Visit]:
        """Each household's latest visit (households never visited are absent)."""
        wanted = sorted(set(households))
        out: dict[str, Visit] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
                chunk = wanted[start : start + 500]
                rows = self._conn.execute(
                    "SELECT v.body FROM visits v JOIN (SELECT household, max(at_ms) AS at_ms "
                    f"FROM visits WHERE household IN ({','.join('?' * len(chunk))}) "
                    "GROUP BY household) last ON last.household = v.household "
                    "AND last.at_ms = v.at_ms",
                    chunk,
                ).fetchall()
                for (body,) in rows:
                    visit = Visit.model_validate_json(body)
                    out[visit.household] = visit
        return out

    def month_counts(self, households: Iterable[str], since: datetime) -> dict[str, int]:
        """Visits per household from `since` on."""
        wanted = sorted(set(households))
        out: dict[str, int] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = self._conn.execute(
                    "SELECT household, count(*) FROM visits WHERE at_ms >= ? AND household IN "
                    f"({','.join('?' * len(chunk))}) GROUP BY household",
                    [epoch_ms(since), *chunk],
                ).fetchall()
                out.update({r[0]: int(r[1]) for r in rows})
        return out

    def status(
        self,
        households: Iterable[Household],
        now: datetime,
        zone: tzinfo,
        *,
        overdue_days: int = OVERDUE_DAYS,
    ) -> builtins.list[HouseholdVisits]:
        """This month's visit status of each household: overdue first, then due, then visited."""
        listed = builtins.list(households)
        ids = [h.id for h in listed]
        start = month_start(now, zone)
        counts = self.month_counts(ids, start)
        last = self.last_visits(ids)
        late = now - timedelta(days=overdue_days)
        out: builtins.list[HouseholdVisits] = []
        for household in listed:
            previous = last.get(household.id)
            count = counts.get(household.id, 0)
            if count:
                status = VisitStatus.VISITED
            elif previous is None or previous.at < late:
                status = VisitStatus.OVERDUE
            else:
                status = VisitStatus.DUE
            out.append(HouseholdVisits(household, status, count, previous))
        order = {VisitStatus.OVERDUE: 0, VisitStatus.DUE: 1, VisitStatus.VISITED: 2}
        out.sort(key=lambda v: (order[v.status], v.household.id))
        return out


def month_start(now: datetime, zone: tzinfo) -> datetime:
    """The first instant of `now`'s calendar month in `zone` (as an aware datetime)."""
    local = now.astimezone(zone)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
