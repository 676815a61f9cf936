"""The alert API (versioned under /v1): alerts, readings from the embedded store, health, metrics."""

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from edge.agent import Agent
from edge.alert_store import InvalidCursor
from edge.errors import AlertNotFound, AlertTransitionError
from edge.model import Alert, AlertEvent, AlertStatus, Severity
from edge.reading_store import ReadingStore, StoredReading
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
