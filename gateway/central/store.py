"""The central alert store: alert events from many gateways, idempotent by event id, on
SQLAlchemy 2 Core (PostgreSQL or SQLite).

Every read takes the caller's communities and puts them in the query's WHERE clause, so an alert
of another community is never fetched at all: the API answers 404 for it, as for one that does
not exist. Events may arrive out of order (a gateway's outbox catching up, two batches retried):
an alert's row moves only forward, ordered by (updated_at, lifecycle rank).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    func,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite

from edge.alerts import AlertPage, decode_cursor, encode_cursor
from edge.clock import Clock, SystemClock
from edge.model import Alert, AlertEvent, AlertStatus, Severity, epoch_ms
from gateway.central.schema import alert_events, alerts

_RANK = {AlertStatus.ACTIVE: 0, AlertStatus.ACKNOWLEDGED: 1, AlertStatus.RESOLVED: 2}
# PostgreSQL: every batch's new event ids are announced on this channel when it commits, so each
# central process streams what any of them stored (gateway.central.console)
NOTIFY_CHANNEL = "community_edge_alert_events"
_NOTIFY_BYTES = 7000  # a NOTIFY payload must stay under 8,000 bytes
_ROWS_PER_STATEMENT = 500  # below SQLite's and PostgreSQL's limits on bound parameters


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """What a listing asks for; `communities` is the caller's scope (None: every community)."""

    communities: Sequence[str] | None
    building: str | None = None
    severity: Severity | None = None
    status: AlertStatus | None = None
    rule: str | None = None
    category: str | None = None
    since: datetime | None = None  # opened at or after
    until: datetime | None = None  # opened before


class ForeignAlerts(Exception):
    """A batch holds events for alerts that another community or gateway owns; nothing stored."""

    def __init__(self, owners: dict[str, str]) -> None:
        self.owners = owners  # alert id -> the community that owns it
        super().__init__(f"alerts owned by another community or gateway: {', '.join(owners)}")


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """How many events of a batch were new, and how many had been stored before."""

    stored: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class Durations:
    """Seconds from opening to a transition, over the alerts that made it."""

    count: int
    p50_s: float | None
    p90_s: float | None


@dataclass(frozen=True, slots=True)
class CommunitySummary:
    """One community: open alerts by severity and response times."""

    community: str
    open_by_severity: dict[str, int] = field(default_factory=dict)
    time_to_acknowledge: Durations = Durations(0, None, None)
    time_to_resolve: Durations = Durations(0, None, None)


class CentralStore:
    """Alerts as they stand and every event that moved them, for many gateways."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self._clock = clock or SystemClock()
        self._postgres = engine.dialect.name == "postgresql"

    def close(self) -> None:
        self.engine.dispose()

    # -- writing ----------------------------------------------------------------------------

    def apply(self, events: Sequence[AlertEvent], gateway: str) -> ApplyResult:
        """Record a batch in one transaction; an event id stored before is skipped.

        An alert belongs to the community and the gateway that first reported it: an event for an
        alert that exists under another community or gateway raises `ForeignAlerts` and the whole
        batch is rolled back, so a gateway can never rewrite another's alert.
        """
        unique = list({e.id: e for e in events}.values())
        received_ms = epoch_ms(self._clock.now())
        insert = postgresql.insert if self._postgres else sqlite.insert
        new: list[AlertEvent] = []
        with self.engine.begin() as conn:
            for start in range(0, len(unique), _ROWS_PER_STATEMENT):
                chunk = unique[start : start + _ROWS_PER_STATEMENT]
                statement = (
                    insert(alert_events)
                    .values([_event_row(e, received_ms, gateway) for e in chunk])
                    .on_conflict_do_nothing(index_elements=[alert_events.c.id])
                    .returning(alert_events.c.id)
                )
                inserted = set(conn.execute(statement).scalars())
                new.extend(e for e in chunk if e.id in inserted)
            newest: dict[str, Alert] = {}
            for event in new:
                seen = newest.get(event.alert.id)
                if seen is None or _version(event.alert) >= _version(seen):
                    newest[event.alert.id] = event.alert
            # sorted by id: concurrent batches lock rows in one order and cannot deadlock
            rows = [_alert_row(newest[k], gateway) for k in sorted(newest)]
            for start in range(0, len(rows), _ROWS_PER_STATEMENT):
                upsert = insert(alerts).values(rows[start : start + _ROWS_PER_STATEMENT])
                new_row = upsert.excluded
                columns = (
                    *("building", "unit", "severity", "status", "status_rank", "updated_ms"),
                    *("acknowledged_ms", "resolved_ms", "gateway", "body"),
                )
                conn.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[alerts.c.id],
                        set_={c: new_row[c] for c in columns},
                        where=and_(
                            new_row.community == alerts.c.community,
                            new_row.gateway == alerts.c.gateway,
                            or_(
                                new_row.updated_ms > alerts.c.updated_ms,
                                and_(
                                    new_row.updated_ms == alerts.c.updated_ms,
                                    new_row.status_rank >= alerts.c.status_rank,
                                ),
                            ),
                        ),
                    )
                )
            # checked after the upsert, inside the transaction: the rows are written (and locked)
            # by now, so a batch racing another gateway's for a new alert id is caught as well
            _refuse_foreign(conn, new, gateway)
            if self._postgres:  # delivered to every listener when (and only if) this commits
                for payload in _id_lists([e.id for e in new]):
                    conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, payload)))
        return ApplyResult(stored=len(new), duplicates=len(events) - len(new))

    def events(self, event_ids: Sequence[str]) -> list[AlertEvent]:
        """Stored events by id, in the order they happened (unscoped: for the console's feed,
        which checks each person's communities)."""
        found: list[AlertEvent] = []
        with self.engine.connect() as conn:
            for start in range(0, len(event_ids), _ROWS_PER_STATEMENT):
                query = (
                    select(alert_events.c.body)
                    .where(
                        alert_events.c.id.in_(list(event_ids[start : start + _ROWS_PER_STATEMENT]))
                    )
                    .order_by(alert_events.c.at_ms, alert_events.c.id)
                )
                found.extend(
                    AlertEvent.model_validate_json(b) for b in conn.execute(query).scalars()
                )
        return found

    # -- reading ----------------------------------------------------------------------------

    def get(self, alert_id: str, communities: Sequence[str] | None) -> Alert | None:
        """The alert, if it exists within `communities` (None: any)."""
        query = select(alerts.c.body).where(alerts.c.id == alert_id)
        if communities is not None:
            query = query.where(alerts.c.community.in_(list(communities)))
        with self.engine.connect() as conn:
            body = conn.execute(query).scalar_one_or_none()
        return Alert.model_validate_json(body) if body is not None else None

    def community_of(self, alert_id: str) -> str | None:
        """The community an alert belongs to, unscoped: only for auditing a refused read."""
        with self.engine.connect() as conn:
            found: str | None = conn.execute(
                select(alerts.c.community).where(alerts.c.id == alert_id)
            ).scalar_one_or_none()
        return found

    def history(self, alert_id: str, communities: Sequence[str] | None) -> list[AlertEvent]:
        """The alert's events in the order they happened."""
        query = select(alert_events.c.body).where(alert_events.c.alert_id == alert_id)
        if communities is not None:
            query = query.where(alert_events.c.community.in_(list(communities)))
        query = query.order_by(alert_events.c.at_ms, alert_events.c.id)
        with self.engine.connect() as conn:
            return [AlertEvent.model_validate_json(b) for b in conn.execute(query).scalars()]

    def list_alerts(
        self, wanted: AlertFilter, *, limit: int = 50, cursor: str | None = None
    ) -> AlertPage:
        """Alerts newest first (by opening time, then id); keyset pagination stable under inserts.

        A page never repeats an alert and never skips one that existed when the listing began:
        the cursor is the (opened_at, id) of the last alert shown, not an offset.
        """
        bodies, next_cursor = self.list_bodies(wanted, limit=limit, cursor=cursor)
        return AlertPage([Alert.model_validate_json(b) for b in bodies], next_cursor)

    def list_bodies(
        self, wanted: AlertFilter, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[str], str | None]:
        """As `list_alerts`, the alerts as the JSON stored (the API sends them on unparsed)."""
        if wanted.communities is not None and not wanted.communities:
            return [], None
        after = decode_cursor(cursor) if cursor is not None else None
        query = self._page_query(wanted, after, limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(last.opened_ms, last.id)
        return [r.body for r in rows[:limit]], next_cursor

    def iterate(self, wanted: AlertFilter, page_size: int = 1000) -> Iterator[Alert]:
        """Every matching alert, newest first, read a page at a time (for exports)."""
        cursor: str | None = None
        while True:
            page = self.list_alerts(wanted, limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _page_query(
        self, wanted: AlertFilter, after: tuple[int, str] | None, limit: int
    ) -> Select[Any]:
        conditions = _conditions(wanted)
        if after is not None:
            conditions.append(tuple_(alerts.c.opened_ms, alerts.c.id) < tuple_(*after))
        columns = (alerts.c.body, alerts.c.opened_ms, alerts.c.id)
        order = (alerts.c.opened_ms.desc(), alerts.c.id.desc())
        communities = wanted.communities
        if communities is None or len(communities) == 1:
            if communities is not None:
                conditions.append(alerts.c.community == communities[0])
            return select(*columns).where(*conditions).order_by(*order).limit(limit)
        # One index range per community, each cut at `limit`, then merged: the database never
        # sorts all the alerts of a token's communities to find the newest few.
        parts = [
            select(*columns)
            .where(alerts.c.community == community, *conditions)
            .order_by(*order)
            .limit(limit)
            .subquery()
            for community in sorted(set(communities))
        ]
        merged = union_all(*(select(p.c.body, p.c.opened_ms, p.c.id) for p in parts)).subquery()
        return (
            select(merged.c.body, merged.c.opened_ms, merged.c.id)
            .order_by(merged.c.opened_ms.desc(), merged.c.id.desc())
            .limit(limit)
        )

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(alerts)).scalar_one())

    def count_events(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(alert_events)).scalar_one())

    # -- summaries --------------------------------------------------------------------------

    def summaries(
        self,
        communities: Sequence[str] | None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[CommunitySummary]:
        """Per community: open alerts by severity (now), and time to acknowledge and to resolve
        (p50, p90) over the alerts opened in [since, until)."""
        if communities is not None and not communities:
            return []
        scope: list[ColumnElement[bool]] = []
        if communities is not None:
            scope.append(alerts.c.community.in_(list(communities)))
        opened = list(scope)
        if since is not None:
            opened.append(alerts.c.opened_ms >= epoch_ms(since))
        if until is not None:
            opened.append(alerts.c.opened_ms < epoch_ms(until))
        open_by: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            counts = conn.execute(
                select(alerts.c.community, alerts.c.severity, func.count())
                .where(alerts.c.status != AlertStatus.RESOLVED.value, *scope)
                .group_by(alerts.c.community, alerts.c.severity)
            ).all()
            for community, severity, n in counts:
                open_by.setdefault(community, {})[severity] = int(n)
            ack = self._durations(conn, alerts.c.acknowledged_ms, opened)
            res = self._durations(conn, alerts.c.resolved_ms, opened)
        names = sorted(set(open_by) | set(ack) | set(res))
        empty = Durations(0, None, None)
        return [
            CommunitySummary(
                community=name,
                open_by_severity=open_by.get(name, {}),
                time_to_acknowledge=ack.get(name, empty),
                time_to_resolve=res.get(name, empty),
            )
            for name in names
        ]

    def _durations(
        self, conn: Any, until_column: Any, conditions: list[ColumnElement[bool]]
    ) -> dict[str, Durations]:
        elapsed = until_column - alerts.c.opened_ms
        where = [until_column.is_not(None), *conditions]
        if self._postgres:
            rows = conn.execute(
                select(
                    alerts.c.community,
                    func.count(),
                    func.percentile_cont(0.5).within_group(elapsed),
                    func.percentile_cont(0.9).within_group(elapsed),
                )
                .where(*where)
                .group_by(alerts.c.community)
            ).all()
            return {
                c: Durations(int(n), float(p50) / 1000, float(p90) / 1000)
                for c, n, p50, p90 in rows
            }
        # SQLite has no percentile: the same interpolation (PostgreSQL's percentile_cont) here
        values: dict[str, list[int]] = {}
        for community, ms in conn.execute(
            select(alerts.c.community, elapsed).where(*where).order_by(alerts.c.community, elapsed)
        ):
            values.setdefault(community, []).append(int(ms))
        return {
            c: Durations(len(v), _percentile(v, 0.5) / 1000, _percentile(v, 0.9) / 1000)
            for c, v in values.items()
        }


def _id_lists(ids: list[str]) -> Iterator[str]:
    """Event ids as newline-separated payloads that each fit one NOTIFY."""
    chunk: list[str] = []
    size = 0
    for event_id in ids:
        if chunk and size + len(event_id.encode()) + 1 > _NOTIFY_BYTES:
            yield "\n".join(chunk)
            chunk, size = [], 0
        chunk.append(event_id)
        size += len(event_id.encode()) + 1
    if chunk:
        yield "\n".join(chunk)


def _percentile(ordered: list[int], q: float) -> float:
    """Linear interpolation between the closest ranks, as PostgreSQL's percentile_cont."""
    position = q * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def _conditions(wanted: AlertFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    equal: tuple[tuple[Any, str | None], ...] = (
        (alerts.c.building, wanted.building),
        (alerts.c.severity, wanted.severity.value if wanted.severity else None),
        (alerts.c.status, wanted.status.value if wanted.status else None),
        (alerts.c.rule, wanted.rule),
        (alerts.c.category, wanted.category),
    )
    conditions.extend(column == value for column, value in equal if value is not None)
    if wanted.since is not None:
        conditions.append(alerts.c.opened_ms >= epoch_ms(wanted.since))
    if wanted.until is not None:
        conditions.append(alerts.c.opened_ms < epoch_ms(wanted.until))
    return conditions


def _version(alert: Alert) -> tuple[int, int]:
    return epoch_ms(alert.updated_at), _RANK[alert.status]


def _refuse_foreign(conn: Connection, new: Sequence[AlertEvent], gateway: str) -> None:
    claimed = {e.alert.id: e.alert.community for e in new}
    owners: dict[str, str] = {}
    ids = sorted(claimed)
    for start in range(0, len(ids), _ROWS_PER_STATEMENT):
        query = select(alerts.c.id, alerts.c.community, alerts.c.gateway).where(
            alerts.c.id.in_(ids[start : start + _ROWS_PER_STATEMENT])
        )
        for row in conn.execute(query):
            if row.community != claimed[row.id] or row.gateway != gateway:
                owners[row.id] = row.community
    # an alert claimed under two communities within one batch cannot be both
    for event in new:
        if event.alert.community != claimed[event.alert.id]:
            owners.setdefault(event.alert.id, claimed[event.alert.id])
    if owners:
        raise ForeignAlerts(owners)


def _event_row(event: AlertEvent, received_ms: int, gateway: str) -> dict[str, Any]:
    return {
        "id": event.id,
        "alert_id": event.alert.id,
        "community": event.alert.community,
        "kind": event.kind.value,
        "at_ms": epoch_ms(event.at),
        "received_ms": received_ms,
        "gateway": gateway,
        "body": event.model_dump_json(),
    }


def _alert_row(alert: Alert, gateway: str) -> dict[str, Any]:
    return {
        "id": alert.id,
        "community": alert.community,
        "building": alert.building,
        "unit": alert.unit,
        "device_id": alert.device_id,
        "rule": alert.rule,
        "category": alert.category,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "status_rank": _RANK[alert.status],
        "opened_ms": epoch_ms(alert.opened_at),
        "updated_ms": epoch_ms(alert.updated_at),
        "acknowledged_ms": epoch_ms(alert.acknowledged_at) if alert.acknowledged_at else None,
        "resolved_ms": epoch_ms(alert.resolved_at) if alert.resolved_at else None,
        "gateway": gateway,
        "body": alert.model_dump_json(),
    }
