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
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge.alerts import InvalidCursor
from edge.model import Alert, AlertEvent, AlertStatus, Severity
from gateway.audit import AuditLog, Result
from gateway.central.store import AlertFilter, CentralStore, CommunitySummary, ForeignAlerts
from gateway.limits import MAX_BODY_BYTES, BodySizeLimit
from gateway.privacy import sees_personal_data
from gateway.tokens import Principal, Role, TokenStore

_log = logging.getLogger(__name__)

MAX_EVENTS = 1000
_CSV_COLUMNS = (
    *("id", "community", "building", "unit", "device_id", "model", "category", "rule"),
    *("severity", "status", "summary", "count", "opened_at", "updated_at", "acknowledged_at"),
    *("acknowledged_by", "resolved_at", "resolved_by"),
)

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class AlertEventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[AlertEvent] = Field(min_length=1, max_length=MAX_EVENTS)


class BatchResult(BaseModel):
    stored: int = Field(description="events new to the store")
    duplicates: int = Field(description="events stored before (same id): ignored")


class AlertList(BaseModel):
    items: list[Alert]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null at the end"
    )


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


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def create_central_app(store: CentralStore, tokens: TokenStore, audit: AuditLog) -> FastAPI:
    """The central API over a migrated store, the token store and the audit log."""
    app = FastAPI(
        title="community-edge central alert API",
        version="1",
        description="Alerts from many gateways. Every /v1 route needs `Authorization: Bearer "
        "<token>` (`community-edge tokens create`).",
    )
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    bearer = HTTPBearer(auto_error=False)
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
    }

    def authenticate(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        principal = tokens.verify(credentials.credentials) if credentials else None
        if principal is None:
            raise HTTPException(
                status_code=401,
                detail="missing, unknown or revoked bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal

    def reader(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role is Role.EDGE_AGENT:
            raise HTTPException(status_code=403, detail="an edge_agent token may only post events")
        return principal

    Agent = Annotated[Principal, Depends(authenticate)]
    Reader = Annotated[Principal, Depends(reader)]

    def record(
        principal: Principal, community: str | None, obj: str, action: str, result: Result
    ) -> None:
        audit.record(
            actor=principal.token_id,
            role=principal.role.value,
            community=community,
            object=obj,
            action=action,
            result=result,
            request_id=uuid.uuid4().hex,
        )

    def scope(principal: Principal, wanted: list[str] | None, action: str) -> list[str] | None:
        """The communities a read may cover; asking for others is recorded as refused."""
        for community in wanted or ():
            if not principal.may_see(community):
                record(principal, community, f"community:{community}", action, "refused")
        return principal.scope(wanted)

    def masked(principal: Principal, alert: Alert) -> Alert:
        if alert.unit is None or sees_personal_data(principal, alert.community):
            return alert
        return alert.model_copy(update={"unit": None})

    @app.exception_handler(StarletteHTTPException)  # also FastAPI's own (bad JSON, 404, 405)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
        }
        response = _error(exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        ] or ["request: invalid"]
        return _error(422, "invalid_request", "; ".join(problems))

    @app.exception_handler(InvalidCursor)
    async def _bad_cursor(request: Request, exc: InvalidCursor) -> JSONResponse:
        return _error(400, "bad_request", "invalid cursor: pass back next_cursor unchanged")

    @app.exception_handler(OperationalError)
    async def _store_down(request: Request, exc: OperationalError) -> JSONResponse:
        _log.error("alert store unavailable: %s", type(exc.orig).__name__)
        return _error(503, "unavailable", "the alert store is unavailable; retry")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal", "internal error")

    @app.get("/healthz", tags=["operations"], responses={503: {"model": ErrorResponse}})
    def healthz() -> dict[str, str]:
        """200 when the store answers."""
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "store": store.engine.dialect.name}

    @app.post("/v1/alert-events", tags=["ingest"], responses={**errors, 413: {}, 422: {}})
    def post_alert_events(principal: Agent, batch: AlertEventBatch) -> BatchResult:
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
                record(principal, community, "alert-events", "post_events", "refused")
            raise HTTPException(
                status_code=403,
                detail=f"events of communities outside this token: {', '.join(foreign)}",
            )
        try:
            result = store.apply(batch.events, gateway=principal.token_id)
        except ForeignAlerts as refused:
            for alert_id, owner in sorted(refused.owners.items()):
                record(principal, owner, f"alert:{alert_id}", "post_events", "refused")
            raise HTTPException(
                status_code=403,
                detail="events for alerts that another community or gateway reported: "
                + ", ".join(sorted(refused.owners)),
            ) from None
        return BatchResult(stored=result.stored, duplicates=result.duplicates)

    def _filter(
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
            communities=scope(principal, community, action),
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
        responses={**errors, 400: {"model": ErrorResponse}},
    )
    def list_alerts(
        principal: Reader,
        community: Annotated[list[str] | None, Query()] = None,
        building: str | None = None,
        severity: Severity | None = None,
        status: AlertStatus | None = None,
        rule: str | None = None,
        category: str | None = None,
        since: Annotated[AwareDatetime | None, Query(description="opened at or after")] = None,
        until: Annotated[AwareDatetime | None, Query(description="opened before")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> Response:
        """Alerts newest first (opening time), filtered, within the token's communities."""
        wanted = _filter(
            principal, "list_alerts", community, building, severity, status, rule, category,
            since, until,
        )  # fmt: skip
        bodies, next_cursor = store.list_bodies(wanted, limit=limit, cursor=cursor)
        # the stored JSON goes out as it is (validated when it came in); only the unit is masked
        items = [
            b if sees_personal_data(principal, c) else _without_unit(b)
            for b, c in ((b, orjson.loads(b)["community"]) for b in bodies)
        ]
        content = b'{"items":[' + b",".join(i.encode() for i in items) + b'],"next_cursor":'
        return Response(content + orjson.dumps(next_cursor) + b"}", media_type="application/json")

    @app.get(
        "/v1/alerts/export.csv",
        tags=["alerts"],
        responses={**errors, 200: {"content": {"text/csv": {}}}},
        response_class=StreamingResponse,
    )
    def export_alerts(
        principal: Reader,
        community: Annotated[list[str] | None, Query()] = None,
        building: str | None = None,
        severity: Severity | None = None,
        status: AlertStatus | None = None,
        rule: str | None = None,
        category: str | None = None,
        since: AwareDatetime | None = None,
        until: AwareDatetime | None = None,
    ) -> StreamingResponse:
        """Every matching alert as CSV, newest first; each export is recorded in the audit log."""
        wanted = _filter(
            principal, "export_csv", community, building, severity, status, rule, category,
            since, until,
        )  # fmt: skip
        communities = wanted.communities
        record(
            principal,
            ",".join(communities) if communities is not None else "*",
            "alerts:export",
            "export_csv",
            "ok",
        )
        return StreamingResponse(
            _csv_lines(store.iterate(wanted), lambda a: masked(principal, a)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="alerts.csv"'},
        )

    @app.get("/v1/alerts/{alert_id}", tags=["alerts"], responses=errors)
    def get_alert(alert_id: str, principal: Reader) -> AlertDetail:
        """One alert with its event history (404 outside the token's communities)."""
        communities = principal.scope(None)
        alert = store.get(alert_id, communities)
        if alert is None:
            owner = store.community_of(alert_id)
            if owner is not None:  # it exists, elsewhere: the caller learns nothing of it
                record(principal, owner, f"alert:{alert_id}", "read_alert", "refused")
            raise HTTPException(status_code=404, detail=f"no alert {alert_id!r}")
        history = store.history(alert_id, communities)
        return AlertDetail(
            alert=masked(principal, alert),
            history=[e.model_copy(update={"alert": masked(principal, e.alert)}) for e in history],
        )

    @app.get("/v1/summaries", tags=["alerts"], responses=errors)
    def summaries(
        principal: Reader,
        community: Annotated[list[str] | None, Query()] = None,
        since: Annotated[AwareDatetime | None, Query(description="opened at or after")] = None,
        until: Annotated[AwareDatetime | None, Query(description="opened before")] = None,
    ) -> list[SummaryView]:
        """Per community: open alerts by severity, and time to acknowledge / resolve (p50, p90)
        over the alerts opened in [since, until)."""
        found = store.summaries(scope(principal, community, "summaries"), since, until)
        return [_summary_view(s) for s in found]

    return app


def _without_unit(body: str) -> str:
    alert = orjson.loads(body)
    alert["unit"] = None
    return orjson.dumps(alert).decode()


def _summary_view(summary: CommunitySummary) -> SummaryView:
    ack, res = summary.time_to_acknowledge, summary.time_to_resolve
    return SummaryView(
        community=summary.community,
        open_by_severity=summary.open_by_severity,
        time_to_acknowledge=DurationsView(count=ack.count, p50_s=ack.p50_s, p90_s=ack.p90_s),
        time_to_resolve=DurationsView(count=res.count, p50_s=res.p50_s, p90_s=res.p90_s),
    )


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # a cell starting with = + - @ is a formula to a spreadsheet: quote it as text
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_lines(alerts: Iterator[Alert], mask: Callable[[Alert], Alert]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    for n, alert in enumerate(alerts, start=1):
        shown = mask(alert).model_dump(mode="json")
        writer.writerow([_csv_cell(shown[c]) for c in _CSV_COLUMNS])
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
