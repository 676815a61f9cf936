"""The alert API (versioned under /v1): alerts, readings from the embedded store, health, metrics."""

import asyncio
import base64
import itertools
import math
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge.agent import Agent
from edge.alerts import Incident, InvalidCursor, Silence, SilenceSpec
from edge.enrich import Contact, Status
from edge.errors import AlertNotFound, AlertTransitionError, IncidentNotFound, SilenceNotFound
from edge.model import Alert, AlertEvent, AlertStatus, DeadLetter, DeviceRef, Severity
from edge.sinks import Delivery, DeliveryLog, ReadingStore, StoredReading
from edge.yaml_file import describe
from gateway.audit import AuditLog, AuditRecord
from gateway.audit import Result as AuditResult
from gateway.auth import ACTORS, Authenticator, Throttled, Unauthenticated
from gateway.limits import MAX_BODY_BYTES, AuthFailureLimiter, BodySizeLimit
from gateway.metrics import render_metrics
from gateway.privacy import mask_name, mask_payload, mask_phone, mask_text, sees_personal_data
from gateway.tokens import Principal, Role, TokenStore


class AwayBody(BaseModel):
    """Whether a household is away from home (kept in DATA_DIR/rules.db)."""

    away: StrictBool


class AlertList(BaseModel):
    items: list[Alert]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null at the end"
    )


class AlertDetail(BaseModel):
    alert: Alert
    history: list[AlertEvent]
    deliveries: list[Delivery] = Field(
        default=[],
        description="every notification channel's attempts at the alert's events, oldest first",
    )


class AlertAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)


class AssignAction(AlertAction):
    assignee: str = Field(min_length=1, max_length=100, description="who takes the alert on")


class IncidentList(BaseModel):
    items: list[Incident]


class IncidentDetail(BaseModel):
    incident: Incident
    alerts: list[Alert]


class SilenceList(BaseModel):
    items: list[Silence]


class CommunitySummary(BaseModel):
    community: str
    since: datetime
    until: datetime
    opened: int = Field(description="alerts opened in the range")
    acknowledged: int
    resolved_by_person: int
    cleared_by_device: int
    ack_p50_s: float | None = Field(description="seconds from opening to acknowledgement")
    ack_p90_s: float | None
    resolve_p50_s: float | None = Field(
        description="seconds from opening to resolution by a person"
    )
    resolve_p90_s: float | None
    open_by_severity: dict[str, int] = Field(description="open now, whenever opened")
    escalations: int = Field(description="escalated events of the alerts opened in the range")
    escalated_alerts: int


class SummaryList(BaseModel):
    items: list[CommunitySummary]


class ReadingList(BaseModel):
    items: list[StoredReading]


class DeadLetterView(BaseModel):
    id: int
    topic: str
    cause: str
    detail: str
    received_at: datetime
    payload_base64: str


class DeviceView(BaseModel):
    device_id: str
    model: str
    category: str
    community: str
    building: str
    unit: str | None
    status: Literal["unknown", "online", "offline"] = Field(
        description="offline: silent past the model's heartbeat_seconds, or reported offline "
        "on its availability topic; unknown: not heard since the gateway started"
    )
    reason: str | None = Field(description="why it is offline")
    last_seen: datetime | None = Field(description="the gateway's time of its last message")
    battery: int | None = Field(description="percent, as last reported")
    battery_low: bool | None
    linkquality: int | None
    heartbeat_seconds: int | None = Field(description="the model's check-in interval")


class DeviceList(BaseModel):
    items: list[DeviceView]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null at the end"
    )


class DeviceDetail(DeviceView):
    install_date: date | None
    resident_ref: str | None = Field(
        description="the resident's reference in the property's records"
    )
    emergency_contacts: list[Contact]
    open_alerts: list[Alert]


class UnregisteredView(BaseModel):
    topic: str
    cause: Literal["unknown_topic", "unknown_device"] = Field(
        description="unknown_topic: no device profile claims it; unknown_device: a profile does "
        "but the device is not in the registry"
    )
    model: str | None
    device_id: str | None
    first_seen: datetime
    last_seen: datetime
    count: int
    detail: str
    sample_base64: str = Field(description="the start of the latest payload (512 bytes at most)")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, str]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _iso_time(value: Any) -> Any:
    """Query times are ISO 8601 text; a bare number (epoch seconds?) is refused, not guessed."""
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        raise ValueError("an ISO 8601 time is expected, e.g. 2026-12-01T08:00:00+08:00")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_time)]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def create_app(
    agent: Agent,
    token: str,
    readings: ReadingStore | None = None,
    deliveries: DeliveryLog | None = None,
    tokens: TokenStore | None = None,
    audit: AuditLog | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    auth_failures_per_minute: int = 10,
) -> FastAPI:
    """The FastAPI app over a running (or at least entered) agent.

    Args:
        token: the bootstrap token (an admin of every community).
        tokens: scoped tokens (`community-edge tokens`); None: the bootstrap token only.
        audit: where alert actions, personal-data reads and refused cross-tenant attempts go.
    """
    app = FastAPI(
        title="community-edge alert API",
        version="1",
        description="Alerts from a community gateway. Every /v1 route needs `Authorization: Bearer <token>`.",
    )
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    bearer = HTTPBearer(auto_error=False)
    auth = Authenticator(token, tokens, AuthFailureLimiter(max_failures=auth_failures_per_minute))
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
    }

    def authorize(
        request: Request,
        response: Response,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        given = request.headers.get("x-request-id", "")
        request.state.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        response.headers["X-Request-Id"] = request.state.request_id
        client = request.client.host if request.client else "unknown"
        try:
            principal = auth.authenticate(credentials.credentials if credentials else None, client)
        except Throttled as exc:
            raise HTTPException(
                status_code=429,
                detail="too many failed authentications from this address; try again later",
                headers={"Retry-After": str(math.ceil(exc.retry_after_s))},
            ) from None
        except Unauthenticated as exc:
            raise HTTPException(
                status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}
            ) from None
        if principal.role == Role.EDGE_AGENT:
            raise HTTPException(
                status_code=403, detail="edge_agent tokens only post alert events to a central API"
            )
        return principal

    # every /v1 route takes its caller from here: a route without it is refused by
    # tests/test_tenancy.py, which walks every route with another community's token
    Caller = Annotated[Principal, Depends(authorize)]

    def _audit(
        request: Request,
        caller: Principal,
        community: str | None,
        obj: str,
        action: str,
        result: AuditResult = "ok",
    ) -> None:
        if audit is not None:
            audit.record(
                actor=caller.token_id,
                role=caller.role.value,
                community=community,
                object=obj,
                action=action,
                result=result,
                request_id=request.state.request_id,
            )

    def _visible(request: Request, caller: Principal, community: str, obj: str) -> None:
        """404 (not 403: ids do not leak) for another community's object; the attempt is audited."""
        if not caller.may_see(community):
            _audit(request, caller, community, obj, "cross_tenant", "refused")
            kind, _, ident = obj.partition(":")
            raise HTTPException(status_code=404, detail=f"no {kind} {ident!r}")

    def _may_act(caller: Principal) -> None:
        if caller.role not in ACTORS:
            raise HTTPException(
                status_code=403, detail=f"a {caller.role} token may read, not act on alerts"
            )

    def _admin(caller: Principal) -> None:
        if caller.role != Role.ADMIN:
            raise HTTPException(status_code=403, detail="for admin tokens only")

    def _topic_visible(caller: Principal, topic: str) -> bool:
        """A raw message's topic is within the caller's communities (one naming none: all only)."""
        if caller.all_communities:
            return True
        community = agent.profiles.community_of(topic)
        return community is not None and caller.may_see(community)

    def _masked(caller: Principal, alert: Alert) -> Alert:
        """The unit (where a resident lives) only for responders of the alert's community."""
        if alert.unit is None or sees_personal_data(caller, alert.community):
            return alert
        return alert.model_copy(update={"unit": None})

    def _masked_event(caller: Principal, event: AlertEvent) -> AlertEvent:
        alert = _masked(caller, event.alert)
        return event if alert is event.alert else event.model_copy(update={"alert": alert})

    @app.exception_handler(StarletteHTTPException)  # also FastAPI's own (bad JSON, 404, 405)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            409: "conflict",
            429: "too_many_requests",
        }
        response = _error(exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            # Starlette names only the first matching route's methods; a path may have several
            allowed = {
                method
                for route in app.routes
                if isinstance(route, APIRoute) and route.path_regex.match(request.url.path)
                for method in route.methods or ()
            }
            response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"where": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()
        ]
        first = details[0] if details else {"where": "request", "problem": "invalid"}
        return JSONResponse(
            status_code=422,
            content={
                "error": {
                    "code": "invalid_request",
                    "message": f"{first['where']}: {first['problem']}",
                    "details": details,
                }
            },
        )

    @app.exception_handler(AlertNotFound)
    async def _not_found(request: Request, exc: AlertNotFound) -> JSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(IncidentNotFound)
    async def _no_incident(request: Request, exc: IncidentNotFound) -> JSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(SilenceNotFound)
    async def _no_silence(request: Request, exc: SilenceNotFound) -> JSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(AlertTransitionError)
    async def _conflict(request: Request, exc: AlertTransitionError) -> JSONResponse:
        return _error(409, "conflict", str(exc))

    @app.exception_handler(InvalidCursor)
    async def _bad_cursor(request: Request, exc: InvalidCursor) -> JSONResponse:
        return _error(400, "bad_request", "invalid cursor: pass back next_cursor unchanged")

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, Any]:
        """Liveness and what is wrong: 200 while the process runs; `status` says degraded."""
        health = await agent.health()
        ok = health["mqtt"]["connected"] and all(s["ok"] for s in health["sinks"].values())
        return {"status": "ok" if ok else "degraded", **health}

    @app.get("/readyz", tags=["operations"], responses={503: {"model": ErrorResponse}})
    async def readyz() -> JSONResponse:
        """200 when connected, sinks healthy and the outbox not backed up; 503 with reasons otherwise."""
        problems = await agent.readiness()
        if problems:
            return JSONResponse(status_code=503, content={"ready": False, "problems": problems})
        return JSONResponse(content={"ready": True, "problems": []})

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def metrics() -> str:
        """Prometheus text exposition."""
        return await render_metrics(agent)

    @app.get("/v1/alerts", tags=["alerts"], responses=errors)
    async def list_alerts(
        caller: Caller,
        community: Annotated[list[str] | None, Query()] = None,
        status: AlertStatus | None = None,
        severity: Severity | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> AlertList:
        """Alerts newest first; filter by community (repeatable), status and severity."""
        scope = caller.scope(community)
        if scope == []:
            return AlertList(items=[], next_cursor=None)
        page = agent.alert_store.list(
            communities=scope,
            status=status,
            severity=severity,
            limit=limit,
            cursor=cursor or None,  # an empty cursor is the first page
        )
        return AlertList(
            items=[_masked(caller, a) for a in page.items], next_cursor=page.next_cursor
        )

    @app.get(
        "/v1/alerts/stream",
        tags=["alerts"],
        responses={**errors, 200: {"content": {"text/event-stream": {}}}},
        response_class=StreamingResponse,
    )
    async def stream_alerts(
        caller: Caller,
        community: Annotated[list[str] | None, Query()] = None,
    ) -> StreamingResponse:
        """Server-sent events: every alert event as it is stored (`event:` is the kind).

        A comment line every 15 s keeps proxies from closing an idle stream. A consumer that falls
        1,000 events behind gets `event: overflow` and the stream ends: reconnect and list.
        """
        scope = caller.scope(community)
        wanted = set(scope) if scope is not None else None

        async def events() -> AsyncIterator[bytes]:
            with agent.stream.subscription() as queue:
                yield b": connected\n\n"
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), 15.0)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if event is None:  # cut off (too far behind) or the agent is stopping
                        if not agent.stream.closed:
                            yield b"event: overflow\ndata: {}\n\n"
                        return
                    if wanted is not None and event.alert.community not in wanted:
                        continue
                    body = _masked_event(caller, event).model_dump_json()
                    yield f"id: {event.id}\nevent: {event.kind}\ndata: {body}\n\n".encode()

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.get("/v1/alerts/{alert_id}", tags=["alerts"], responses=errors)
    async def get_alert(alert_id: str, caller: Caller, request: Request) -> AlertDetail:
        """One alert with its event history and its notification channels' delivery attempts."""
        alert = _alert_of(request, caller, alert_id)
        if sees_personal_data(caller, alert.community) and alert.unit is not None:
            _audit(request, caller, alert.community, f"alert:{alert_id}", "read_personal_data")
        return AlertDetail(
            alert=_masked(caller, alert),
            history=[_masked_event(caller, e) for e in agent.alert_store.history(alert_id)],
            deliveries=await deliveries.for_alert(alert_id) if deliveries is not None else [],
        )

    action_errors = {**errors, 409: {"model": ErrorResponse}}

    def _alert_of(request: Request, caller: Principal, alert_id: str) -> Alert:
        alert = agent.alert_store.get(alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert {alert_id!r}")
        _visible(request, caller, alert.community, f"alert:{alert_id}")
        return alert

    async def _on_alert(
        request: Request,
        caller: Principal,
        alert_id: str,
        action: str,
        act: Callable[[], Awaitable[Alert]],
    ) -> Alert:
        alert = _alert_of(request, caller, alert_id)
        _may_act(caller)
        try:
            done = await act()
        except AlertTransitionError:
            _audit(request, caller, alert.community, f"alert:{alert_id}", action, "conflict")
            raise
        _audit(request, caller, alert.community, f"alert:{alert_id}", action)
        return _masked(caller, done)

    @app.post("/v1/alerts/{alert_id}/ack", tags=["alerts"], responses=action_errors)
    async def acknowledge(
        alert_id: str, caller: Caller, request: Request, body: AlertAction | None = None
    ) -> Alert:
        """Acknowledge an active alert (409 if it is already acknowledged or resolved)."""
        note = body.note if body else None
        return await _on_alert(
            request,
            caller,
            alert_id,
            "acknowledge",
            lambda: agent.acknowledge(alert_id, caller.token_id, note),
        )

    @app.post("/v1/alerts/{alert_id}/resolve", tags=["alerts"], responses=action_errors)
    async def resolve(
        alert_id: str, caller: Caller, request: Request, body: AlertAction | None = None
    ) -> Alert:
        """Resolve an active or acknowledged alert (409 if it is already resolved)."""
        note = body.note if body else None
        return await _on_alert(
            request,
            caller,
            alert_id,
            "resolve",
            lambda: agent.resolve(alert_id, caller.token_id, note),
        )

    @app.post("/v1/alerts/{alert_id}/assign", tags=["alerts"], responses=action_errors)
    async def assign(alert_id: str, caller: Caller, request: Request, body: AssignAction) -> Alert:
        """Give an open alert to a person (409 if it is resolved); its status does not change."""
        return await _on_alert(
            request,
            caller,
            alert_id,
            "assign",
            lambda: agent.assign(alert_id, body.assignee, caller.token_id, body.note),
        )

    # -- incidents -----------------------------------------------------------------------------

    @app.get("/v1/incidents", tags=["incidents"], responses=errors)
    async def list_incidents(
        caller: Caller,
        community: Annotated[list[str] | None, Query()] = None,
        open_only: Annotated[bool, Query(alias="open")] = False,
        min_alerts: Annotated[int, Query(ge=1)] = 1,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> IncidentList:
        """Incidents newest first; `open=true` for those with an open alert, `min_alerts=2` for
        groups rather than single alerts."""
        scope = caller.scope(community)
        if scope == []:
            return IncidentList(items=[])
        return IncidentList(
            items=agent.alert_store.incidents(
                communities=scope, open_only=open_only, min_alerts=min_alerts, limit=limit
            )
        )

    @app.get("/v1/incidents/{incident_id}", tags=["incidents"], responses=errors)
    async def get_incident(incident_id: str, caller: Caller, request: Request) -> IncidentDetail:
        """One incident with its alerts (its signals), oldest first."""
        incident, alerts = _incident_of(request, caller, incident_id)
        return IncidentDetail(incident=incident, alerts=[_masked(caller, a) for a in alerts])

    def _incident_of(
        request: Request, caller: Principal, incident_id: str
    ) -> tuple[Incident, list[Alert]]:
        found = agent.alert_store.incident(incident_id)
        if found is None:
            raise IncidentNotFound(f"no incident {incident_id!r}")
        _visible(request, caller, found[0].community, f"incident:{incident_id}")
        return found

    async def _on_incident(
        request: Request, caller: Principal, incident_id: str, action: str, note: str | None
    ) -> Incident:
        incident, _ = _incident_of(request, caller, incident_id)
        _may_act(caller)
        done = await agent.act_on_incident(incident_id, action, caller.token_id, note)
        _audit(request, caller, incident.community, f"incident:{incident_id}", action)
        return done

    @app.post("/v1/incidents/{incident_id}/ack", tags=["incidents"], responses=action_errors)
    async def acknowledge_incident(
        incident_id: str, caller: Caller, request: Request, body: AlertAction | None = None
    ) -> Incident:
        """Acknowledge every active alert of the incident (one event each); 409 if none is."""
        note = body.note if body else None
        return await _on_incident(request, caller, incident_id, "acknowledge", note)

    @app.post("/v1/incidents/{incident_id}/resolve", tags=["incidents"], responses=action_errors)
    async def resolve_incident(
        incident_id: str, caller: Caller, request: Request, body: AlertAction | None = None
    ) -> Incident:
        """Resolve every open alert of the incident (one event each); 409 if none is open."""
        note = body.note if body else None
        return await _on_incident(request, caller, incident_id, "resolve", note)

    # -- silences ------------------------------------------------------------------------------

    @app.post("/v1/silences", tags=["silences"], status_code=201, responses=errors)
    async def create_silence(caller: Caller, request: Request, body: SilenceSpec) -> Silence:
        """Hold back notifications of matching alerts (still recorded) over a span or window.

        A token scoped to some communities must name one of them; only a token of every
        community may silence across communities.
        """
        _may_act(caller)
        if body.community is None and not caller.all_communities:
            raise HTTPException(status_code=403, detail="name the community to silence")
        if body.community is not None:
            _visible(request, caller, body.community, f"community:{body.community}")
        try:
            silence = agent.add_silence(body, caller.token_id)
        except ValidationError as exc:  # e.g. an end before the start (default start: now)
            raise HTTPException(status_code=422, detail=describe(exc)) from None
        _audit(request, caller, body.community, f"silence:{silence.id}", "silence")
        return silence

    @app.get("/v1/silences", tags=["silences"], responses=errors)
    async def list_silences(
        caller: Caller,
        include_over: Annotated[bool, Query(alias="all")] = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> SilenceList:
        """Silences newest first: those not over yet, or with `all=true` every one."""
        current = None if include_over else agent.clock.now()
        return SilenceList(
            items=[
                s
                for s in agent.alert_store.silences(current_at=current, limit=limit)
                if caller.all_communities or (s.community and caller.may_see(s.community))
            ]
        )

    @app.delete("/v1/silences/{silence_id}", tags=["silences"], responses=action_errors)
    async def expire_silence(silence_id: str, caller: Caller, request: Request) -> Silence:
        """End a silence now (kept for the record); 409 if it is already over."""
        found = agent.alert_store.silence(silence_id)
        if found is None:
            raise SilenceNotFound(f"no silence {silence_id!r}")
        if not caller.all_communities:
            _visible(request, caller, found.community or "*", f"silence:{silence_id}")
        _may_act(caller)
        silence = agent.expire_silence(silence_id, caller.token_id)
        _audit(request, caller, found.community, f"silence:{silence_id}", "expire_silence")
        return silence

    # -- response figures ----------------------------------------------------------------------

    @app.get("/v1/summary", tags=["alerts"], responses=errors)
    async def summary(
        caller: Caller,
        community: Annotated[list[str] | None, Query()] = None,
        since: IsoTime | None = None,
        until: IsoTime | None = None,
    ) -> SummaryList:
        """Response figures per community for alerts opened in [since, until) (default: 30 days)."""
        end = until or agent.clock.now()
        start = since or end - timedelta(days=30)
        if start.tzinfo is None or end.tzinfo is None:
            raise HTTPException(status_code=400, detail="since and until need a time zone")
        wanted = [c for c in (community or agent.alert_store.communities()) if caller.may_see(c)]
        return SummaryList(
            items=[
                CommunitySummary(**asdict(agent.alert_store.summary(c, start, end))) for c in wanted
            ]
        )

    def _device_view(caller: Principal, ref: DeviceRef) -> dict[str, Any]:
        state = agent.liveness.state(ref)
        return {
            "device_id": ref.device_id,
            "model": ref.model,
            "category": ref.category,
            "community": ref.community,
            "building": ref.building,
            "unit": ref.unit if sees_personal_data(caller, ref.community) else None,
            "status": state.status.label,
            "reason": state.reason,
            "last_seen": state.last_seen,
            "battery": state.battery,
            "battery_low": state.battery_low,
            "linkquality": state.linkquality,
            "heartbeat_seconds": state.heartbeat_seconds,
        }

    @app.get("/v1/devices", tags=["devices"], responses={**errors, 400: {"model": ErrorResponse}})
    async def list_devices(
        caller: Caller,
        community: Annotated[list[str] | None, Query()] = None,
        building: str | None = None,
        model: str | None = None,
        status: Literal["unknown", "online", "offline"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9]{0,12}$")] = None,
    ) -> DeviceList:
        """Registered devices (with open enrollment: those heard so far) and their liveness."""
        start = 0
        if cursor:  # absent or empty: the first page
            if not cursor.isdigit():
                raise InvalidCursor(cursor)
            start = int(cursor)
        registry = agent.registry
        health = agent.liveness
        scope = caller.scope(community)
        wanted = set(scope) if scope is not None else None
        wanted_status = Status[status.upper()] if status is not None else None
        items: list[DeviceView] = []
        # a scan of plain comparisons: 100,000 devices in tens of milliseconds; only the page's
        # devices get a view built
        for slot in range(start, registry.slots):
            ref = registry.by_slot(slot)
            if (
                (wanted is not None and ref.community not in wanted)
                or (building is not None and ref.building != building)
                or (model is not None and ref.model != model)
                or (wanted_status is not None and health.status_of(ref) is not wanted_status)
            ):
                continue
            if len(items) == limit:
                return DeviceList(items=items, next_cursor=str(slot))
            items.append(DeviceView(**_device_view(caller, ref)))
        return DeviceList(items=items, next_cursor=None)

    @app.get("/v1/devices/unregistered", tags=["devices"], responses=errors)
    async def list_unregistered(
        caller: Caller, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
    ) -> list[UnregisteredView]:
        """Topics of messages from devices the registry does not know, or no profile claims.

        Each message is also kept as a dead letter; register the device (the registry file is
        reloaded on change) and it leaves this list. Admin tokens only (the installer's view).
        """
        _admin(caller)
        entries = (
            e for e in agent.pipeline.unregistered.entries() if _topic_visible(caller, e.topic)
        )
        return [
            UnregisteredView(
                topic=e.topic,
                cause=e.cause,
                model=e.model,
                device_id=e.device_id,
                first_seen=e.first_seen,
                last_seen=e.last_seen,
                count=e.count,
                detail=mask_text(e.detail),
                sample_base64=base64.b64encode(mask_payload(e.sample)).decode(),
            )
            for e in itertools.islice(entries, limit)
        ]

    @app.get("/v1/devices/{device_id}", tags=["devices"], responses=errors)
    async def get_device(device_id: str, caller: Caller, request: Request) -> DeviceDetail:
        """One device: where it is, its liveness, battery and link, who to call, open alerts.

        The resident reference, emergency contacts and unit go in full to the responders of the
        device's community (each such read is audited); others see them masked.
        """
        ref = agent.registry.find(device_id)
        if ref is None:
            raise HTTPException(status_code=404, detail=f"no device {device_id!r}")
        _visible(request, caller, ref.community, f"device:{device_id}")
        details = agent.registry.details(device_id)
        contacts = list(details.emergency_contacts) if details else []
        responder = sees_personal_data(caller, ref.community)
        if responder and details is not None:
            _audit(request, caller, ref.community, f"device:{device_id}", "read_personal_data")
        if not responder:
            contacts = [
                c.model_copy(update={"name": mask_name(c.name), "phone": mask_phone(c.phone)})
                for c in contacts
            ]
        return DeviceDetail(
            **_device_view(caller, ref),
            install_date=details.install_date if details else None,
            resident_ref=details.resident_ref if details and responder else None,
            emergency_contacts=contacts,
            open_alerts=[
                _masked(caller, a)
                for a in agent.alerts.open_alerts()
                if a.device_id == ref.device_id and a.community == ref.community
            ],
        )

    @app.get("/v1/readings", tags=["readings"], responses=errors)
    async def list_readings(
        caller: Caller,
        device_id: str | None = None,
        community: Annotated[list[str] | None, Query()] = None,
        category: str | None = None,
        since: IsoTime | None = None,
        until: IsoTime | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 100,
    ) -> ReadingList:
        """Readings newest first, from the embedded store (404 when a time-series server is used)."""
        if readings is None:
            raise HTTPException(
                status_code=404,
                detail="readings go to the configured time-series server; query it directly",
            )
        scope = caller.scope(community)
        if scope == []:
            return ReadingList(items=[])
        return ReadingList(
            items=readings.query(
                device_id=device_id,
                communities=scope,
                category=category,
                since=since,
                until=until,
                limit=limit,
            )
        )

    @app.get("/v1/dead-letters", tags=["operations"], responses=errors)
    async def list_dead_letters(
        caller: Caller,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    ) -> list[DeadLetterView]:
        """Messages that could not be decoded, newest first, with the reason (admin tokens only).

        A community admin sees those whose topic names one of its communities; payloads and
        reasons come with names and phone numbers masked (admins are not responders).
        """
        _admin(caller)
        letters: list[DeadLetter] = []
        cursor = before_id
        while len(letters) < limit:
            page = await agent.outbox.dead_letters(limit=max(limit, 500), before_id=cursor)
            letters.extend(d for d in page if _topic_visible(caller, d.topic))
            if len(page) < max(limit, 500) or page[-1].id is None:
                break
            cursor = page[-1].id
        return [
            DeadLetterView(
                id=d.id or 0,
                topic=d.topic,
                cause=d.cause,
                detail=mask_text(d.detail),
                received_at=d.received_at,
                payload_base64=base64.b64encode(mask_payload(d.payload)).decode(),
            )
            for d in letters[:limit]
        ]

    @app.put(
        "/v1/households/{community}/{building}/{unit}/away",
        tags=["households"],
        responses=action_errors,
    )
    async def set_away(
        caller: Caller, request: Request, community: str, building: str, unit: str, body: AwayBody
    ) -> AwayBody:
        """Mark a household away (absence rules skip it; an open absence alert resolves) or back."""
        _visible(request, caller, community, f"household:{community}/{building}/{unit}")
        _may_act(caller)
        await agent.ticker.set_away(community, building, unit, body.away)
        _audit(request, caller, community, f"household:{building}/{unit}", "set_away")
        return AwayBody(away=agent.pipeline.rules.is_away(community, building, unit))

    @app.get("/v1/audit", tags=["operations"], responses=errors)
    async def list_audit(
        caller: Caller,
        request: Request,
        community: str | None = None,
        action: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    ) -> list[AuditRecord]:
        """The audit log, newest first (admin tokens only; read-only: nothing here writes it).

        A community admin reads the records of its communities only.
        """
        _admin(caller)
        if audit is None:
            return []
        if community is not None and not caller.may_see(community):
            _audit(request, caller, community, f"community:{community}", "read_audit", "refused")
            return []
        scope = None if caller.all_communities else sorted(caller.communities)
        return audit.query(
            limit=limit, before_id=before_id, community=community, action=action, communities=scope
        )

    return app
