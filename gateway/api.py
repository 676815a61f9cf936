"""The alert API (versioned under /v1): alerts, readings from the embedded store, health, metrics."""

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from edge.agent import Agent
from edge.alert_store import InvalidCursor
from edge.errors import AlertNotFound, AlertTransitionError
from edge.liveness import Status
from edge.model import Alert, AlertEvent, AlertStatus, DeviceRef, Severity
from edge.reading_store import ReadingStore, StoredReading
from edge.registry import Contact
from gateway.metrics import render_metrics


class AlertList(BaseModel):
    items: list[Alert]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null at the end"
    )


class AlertDetail(BaseModel):
    alert: Alert
    history: list[AlertEvent]


class AlertAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)


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


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def create_app(agent: Agent, token: str, readings: ReadingStore | None = None) -> FastAPI:
    """The FastAPI app over a running (or at least entered) agent."""
    app = FastAPI(
        title="community-edge alert API",
        version="1",
        description="Alerts from a community gateway. Every /v1 route needs `Authorization: Bearer <token>`.",
    )
    bearer = HTTPBearer(auto_error=False)
    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
    }

    def authorize(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        if credentials is None or not secrets.compare_digest(
            credentials.credentials.encode(), token.encode()
        ):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return "api-token"  # the caller's identity, recorded on alert events

    Caller = Annotated[str, Depends(authorize)]

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        codes = {401: "unauthorized", 404: "not_found", 409: "conflict", 400: "bad_request"}
        response = _error(exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
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
        page = agent.alert_store.list(
            communities=community, status=status, severity=severity, limit=limit, cursor=cursor
        )
        return AlertList(items=page.items, next_cursor=page.next_cursor)

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
        wanted = set(community) if community else None

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
                    body = event.model_dump_json()
                    yield f"id: {event.id}\nevent: {event.kind}\ndata: {body}\n\n".encode()

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.get("/v1/alerts/{alert_id}", tags=["alerts"], responses=errors)
    async def get_alert(alert_id: str, caller: Caller) -> AlertDetail:
        """One alert with its event history."""
        alert = agent.alert_store.get(alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert {alert_id!r}")
        return AlertDetail(alert=alert, history=agent.alert_store.history(alert_id))

    action_errors = {**errors, 409: {"model": ErrorResponse}}

    @app.post("/v1/alerts/{alert_id}/ack", tags=["alerts"], responses=action_errors)
    async def acknowledge(alert_id: str, caller: Caller, body: AlertAction | None = None) -> Alert:
        """Acknowledge an active alert (409 if it is already acknowledged or resolved)."""
        return await agent.acknowledge(alert_id, caller, body.note if body else None)

    @app.post("/v1/alerts/{alert_id}/resolve", tags=["alerts"], responses=action_errors)
    async def resolve(alert_id: str, caller: Caller, body: AlertAction | None = None) -> Alert:
        """Resolve an active or acknowledged alert (409 if it is already resolved)."""
        return await agent.resolve(alert_id, caller, body.note if body else None)

    def _device_view(ref: DeviceRef) -> dict[str, Any]:
        state = agent.liveness.state(ref)
        return {
            "device_id": ref.device_id,
            "model": ref.model,
            "category": ref.category,
            "community": ref.community,
            "building": ref.building,
            "unit": ref.unit,
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
        cursor: str | None = None,
    ) -> DeviceList:
        """Registered devices (with open enrollment: those heard so far) and their liveness."""
        start = 0
        if cursor is not None:
            if not cursor.isdigit():
                raise InvalidCursor(cursor)
            start = int(cursor)
        registry = agent.registry
        health = agent.liveness
        wanted = set(community) if community else None
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
            items.append(DeviceView(**_device_view(ref)))
        return DeviceList(items=items, next_cursor=None)

    @app.get("/v1/devices/unregistered", tags=["devices"], responses=errors)
    async def list_unregistered(
        caller: Caller, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
    ) -> list[UnregisteredView]:
        """Topics of messages from devices the registry does not know, or no profile claims.

        Each message is also kept as a dead letter; register the device (the registry file is
        reloaded on change) and it leaves this list.
        """
        return [
            UnregisteredView(
                topic=e.topic,
                cause=e.cause,
                model=e.model,
                device_id=e.device_id,
                first_seen=e.first_seen,
                last_seen=e.last_seen,
                count=e.count,
                detail=e.detail,
                sample_base64=base64.b64encode(e.sample).decode(),
            )
            for e in agent.pipeline.unregistered.entries()[:limit]
        ]

    @app.get("/v1/devices/{device_id}", tags=["devices"], responses=errors)
    async def get_device(device_id: str, caller: Caller) -> DeviceDetail:
        """One device: where it is, its liveness, battery and link, who to call, open alerts."""
        ref = agent.registry.find(device_id)
        if ref is None:
            raise HTTPException(status_code=404, detail=f"no device {device_id!r}")
        details = agent.registry.details(device_id)
        return DeviceDetail(
            **_device_view(ref),
            install_date=details.install_date if details else None,
            resident_ref=details.resident_ref if details else None,
            emergency_contacts=list(details.emergency_contacts) if details else [],
            open_alerts=[
                a
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
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 100,
    ) -> ReadingList:
        """Readings newest first, from the embedded store (404 when a time-series server is used)."""
        if readings is None:
            raise HTTPException(
                status_code=404,
                detail="readings go to the configured time-series server; query it directly",
            )
        return ReadingList(
            items=readings.query(
                device_id=device_id,
                communities=community,
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
        before_id: int | None = None,
    ) -> list[DeadLetterView]:
        """Messages that could not be decoded, newest first, with the reason."""
        letters = await agent.outbox.dead_letters(limit=limit, before_id=before_id)
        return [
            DeadLetterView(
                id=d.id or 0,
                topic=d.topic,
                cause=d.cause,
                detail=d.detail,
                received_at=d.received_at,
                payload_base64=base64.b64encode(d.payload).decode(),
            )
            for d in letters
        ]

    return app
