"""The central alert API: edge agents post alert events, platforms and staff read them.

Every /v1 route needs `Authorization: Bearer <token>` (gateway.tokens). An `edge_agent` token may
only POST /v1/alert-events, and only events of its own communities: a batch holding one event of
another community is refused whole (403, nothing stored, audited), so the agent's outbox keeps it
and retries until the token is fixed; no alert is dropped for a configuration fault. Every other
role reads within its communities; an alert of another community is 404, as one that does not
exist (and the attempt is audited). The unit, the only personal datum an alert carries, is shown
to responders only (gateway.privacy); a platform sees the building.
"""

import csv
import io
import logging
from collections.abc import Callable, Iterator
from datetime import tzinfo
from typing import Annotated

import orjson
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from edge.model import Alert, AlertEvent, AlertStatus, Severity
from gateway.api.errors import ERRORS, ErrorResponse, error_response, install_error_handlers
from gateway.api.schemas import AlertList, ZonedTime
from gateway.api.security import (
    Caller,
    MaybeCaller,
    Poster,
    audit,
    masked,
    masked_event,
    pseudonyms_of,
)
from gateway.api.untrusted_text import csv_cell
from gateway.audit import AuditLog
from gateway.auth import Authenticator
from gateway.central.console import CentralAlerts
from gateway.central.store import AlertFilter, CentralStore, CommunitySummary, ForeignAlerts
from gateway.console import api_docs, create_console
from gateway.limits import MAX_BODY_BYTES, AuthFailureLimiter, BodySizeLimit
from gateway.privacy import sees_personal_data
from gateway.tokens import Principal, Role, TokenStore

_log = logging.getLogger(__name__)

MAX_EVENTS = 1000
_CSV_COLUMNS = (
    *("id", "community", "building", "unit", "device_id", "model", "category", "rule"),
    *("severity", "status", "summary", "count", "opened_at", "updated_at", "acknowledged_at"),
    *("acknowledged_by", "resolved_at", "resolved_by"),
)


class AlertEventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[AlertEvent] = Field(min_length=1, max_length=MAX_EVENTS)


class BatchResult(BaseModel):
    stored: int = Field(description="events new to the store")
    duplicates: int = Field(description="events stored before (same id): ignored")


class AlertDetail(BaseModel):
    alert: Alert
    history: list[AlertEvent]


class DurationsView(BaseModel):
    count: int
    p50_s: float | None
    p90_s: float | None


class SummaryView(BaseModel):
    community: str
    open_by_severity: dict[str, int]
    time_to_acknowledge: DurationsView
    time_to_resolve: DurationsView


async def _store_down(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OperationalError)
    _log.error("alert store unavailable: %s", type(exc.orig).__name__)
    return error_response(503, "the alert store is unavailable; retry")


def create_central_app(
    store: CentralStore,
    tokens: TokenStore,
    audit_log: AuditLog,
    auth_failures_per_minute: int = 10,
    zone: tzinfo | None = None,
) -> FastAPI:
    """The central API over a migrated store, the token store and the audit log, with the duty
    console at /console/ (every gateway's communities in the caller's scope, read only).

    Args:
        zone: the time zone the console shows times in (None: Asia/Shanghai).
    """
    app = FastAPI(
        title="community-edge central alert API",
        version="1",
        description="Alerts from many gateways. Every /v1 route needs `Authorization: Bearer "
        "<token>` (`community-edge tokens create`).",
        # /docs and /redoc from the files the package ships, not a CDN (gateway.console.api_docs)
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    install_error_handlers(app)
    app.add_exception_handler(OperationalError, _store_down)
    # no bootstrap token here: every caller holds a scoped token (`community-edge tokens create`)
    app.state.authenticator = Authenticator(
        None, tokens, AuthFailureLimiter(max_failures=auth_failures_per_minute)
    )
    app.state.audit = audit_log
    places = app.state.pseudonyms = pseudonyms_of(tokens)
    console_feed = app.state.console_feed = CentralAlerts(store)

    def scope(
        request: Request, principal: Principal, wanted: list[str] | None, action: str
    ) -> list[str] | None:
        """The communities a read may cover; asking for others is recorded as refused."""
        for community in wanted or ():
            if not principal.may_see(community):
                audit(request, principal, community, f"community:{community}", action, "refused")
        return principal.scope(wanted)

    @app.get(
        "/healthz",
        tags=["operations"],
        responses={status: {"model": ErrorResponse} for status in (401, 429, 503)},
    )
    def healthz(caller: MaybeCaller) -> dict[str, str]:
        """200 when the store answers, `degraded` when the audit log was unreadable and started
        empty; which store it is, and what was wrong, only with an admin token."""
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        status = "ok" if audit_log.problem is None else "degraded"
        if caller is None or caller.role is not Role.ADMIN:
            return {"status": status}
        answer = {"status": status, "store": store.engine.dialect.name}
        if audit_log.problem is not None:
            answer["audit"] = audit_log.problem
        return answer

    @app.post("/v1/alert-events", tags=["ingest"], responses={**ERRORS, 413: {}, 422: {}})
    def post_alert_events(
        request: Request, principal: Poster, batch: AlertEventBatch
    ) -> BatchResult:
        """A batch of alert events from an edge agent; idempotent by event id.

        The whole batch is refused (403) if one event belongs to a community outside the token's,
        or to an alert that another community or gateway reported first (never merged).
        """
        if principal.role is not Role.EDGE_AGENT:
            raise HTTPException(status_code=403, detail="only edge_agent tokens post events")
        foreign = sorted(
            {e.alert.community for e in batch.events if not principal.may_see(e.alert.community)}
        )
        if foreign:
            for community in foreign:
                audit(request, principal, community, "alert-events", "post_events", "refused")
            raise HTTPException(
                status_code=403,
                detail=f"events of communities outside this token: {', '.join(foreign)}",
            )
        try:
            result = store.apply(batch.events, gateway=principal.token_id)
        except ForeignAlerts as refused:
            for alert_id, owner in sorted(refused.owners.items()):
                audit(request, principal, owner, f"alert:{alert_id}", "post_events", "refused")
            raise HTTPException(
                status_code=403,
                detail="events for alerts that another community or gateway reported: "
                + ", ".join(sorted(refused.owners)),
            ) from None
        if result.stored:  # committed: the consoles' boards fetch themselves again
            console_feed.posted(batch.events)
        return BatchResult(stored=result.stored, duplicates=result.duplicates)

    def _filter(
        request: Request,
        principal: Principal,
        action: str,
        community: list[str] | None,
        building: str | None,
        severity: Severity | None,
        status: AlertStatus | None,
        rule: str | None,
        category: str | None,
        since: AwareDatetime | None,
        until: AwareDatetime | None,
    ) -> AlertFilter:
        return AlertFilter(
            communities=scope(request, principal, community, action),
            building=building,
            severity=severity,
            status=status,
            rule=rule,
            category=category,
            since=since,
            until=until,
        )

    @app.get(
        "/v1/alerts",
        tags=["alerts"],
        response_model=AlertList,
        responses={**ERRORS, 400: {"model": ErrorResponse}},
    )
    def list_alerts(
        request: Request,
        principal: Caller,
        community: Annotated[list[str] | None, Query()] = None,
        building: str | None = None,
        severity: Severity | None = None,
        status: AlertStatus | None = None,
        rule: str | None = None,
        category: str | None = None,
        since: Annotated[ZonedTime | None, Query(description="opened at or after")] = None,
        until: Annotated[ZonedTime | None, Query(description="opened before")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> Response:
        """Alerts newest first (opening time), filtered, within the token's communities."""
        wanted = _filter(
            request, principal, "list_alerts", community, building, severity, status, rule, category,
            since, until,
        )  # fmt: skip
        bodies, next_cursor = store.list_bodies(wanted, limit=limit, cursor=cursor)
        # the stored JSON goes out as it is (validated when it came in); for a caller who may
        # not see the unit, the alert is masked like on every other route
        items = [
            b
            if sees_personal_data(principal, c)
            else masked(principal, Alert.model_validate_json(b), places).model_dump_json()
            for b, c in ((b, orjson.loads(b)["community"]) for b in bodies)
        ]
        content = b'{"items":[' + b",".join(i.encode() for i in items) + b'],"next_cursor":'
        return Response(content + orjson.dumps(next_cursor) + b"}", media_type="application/json")

    @app.get(
        "/v1/alerts/export.csv",
        tags=["alerts"],
        responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
        response_class=StreamingResponse,
    )
    def export_alerts(
        request: Request,
        principal: Caller,
        community: Annotated[list[str] | None, Query()] = None,
        building: str | None = None,
        severity: Severity | None = None,
        status: AlertStatus | None = None,
        rule: str | None = None,
        category: str | None = None,
        since: ZonedTime | None = None,
        until: ZonedTime | None = None,
    ) -> StreamingResponse:
        """Every matching alert as CSV, newest first; each export is recorded in the audit log."""
        wanted = _filter(
            request, principal, "export_csv", community, building, severity, status, rule, category,
            since, until,
        )  # fmt: skip
        communities = wanted.communities
        audit(
            request,
            principal,
            ",".join(communities) if communities is not None else "*",
            "alerts:export",
            "export_csv",
        )
        return StreamingResponse(
            _csv_lines(store.iterate(wanted), lambda a: masked(principal, a, places)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="alerts.csv"'},
        )

    @app.get("/v1/alerts/{alert_id}", tags=["alerts"], responses=ERRORS)
    def get_alert(alert_id: str, request: Request, principal: Caller) -> AlertDetail:
        """One alert with its event history (404 outside the token's communities)."""
        communities = principal.scope(None)
        alert = store.get(alert_id, communities)
        if alert is None:
            owner = store.community_of(alert_id)
            if owner is not None:  # it exists, elsewhere: the caller learns nothing of it
                audit(request, principal, owner, f"alert:{alert_id}", "read_alert", "refused")
            raise HTTPException(status_code=404, detail=f"no alert {alert_id!r}")
        history = store.history(alert_id, communities)
        return AlertDetail(
            alert=masked(principal, alert, places),
            history=[masked_event(principal, e, places) for e in history],
        )

    @app.get("/v1/summaries", tags=["alerts"], responses=ERRORS)
    def summaries(
        request: Request,
        principal: Caller,
        community: Annotated[list[str] | None, Query()] = None,
        since: Annotated[ZonedTime | None, Query(description="opened at or after")] = None,
        until: Annotated[ZonedTime | None, Query(description="opened before")] = None,
    ) -> list[SummaryView]:
        """Per community: open alerts by severity, and time to acknowledge / resolve (p50, p90)
        over the alerts opened in [since, until)."""
        found = store.summaries(scope(request, principal, community, "summaries"), since, until)
        return [_summary_view(s) for s in found]

    app.include_router(api_docs.router)
    # the same console as a gateway's, over the central store; it reads, the gateways act
    app.mount(
        "/console",
        create_console(
            *(console_feed, app.state.authenticator, tokens, audit_log, None, zone, places),
            acts=False,
            threaded_reads=True,  # the board's queries must not stall every open stream
        ),
    )
    return app


def _summary_view(summary: CommunitySummary) -> SummaryView:
    ack, res = summary.time_to_acknowledge, summary.time_to_resolve
    return SummaryView(
        community=summary.community,
        open_by_severity=summary.open_by_severity,
        time_to_acknowledge=DurationsView(count=ack.count, p50_s=ack.p50_s, p90_s=ack.p90_s),
        time_to_resolve=DurationsView(count=res.count, p50_s=res.p50_s, p90_s=res.p90_s),
    )


def _csv_lines(alerts: Iterator[Alert], mask: Callable[[Alert], Alert]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    for n, alert in enumerate(alerts, start=1):
        shown = mask(alert).model_dump(mode="json")
        writer.writerow([csv_cell(shown[c]) for c in _CSV_COLUMNS])
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
