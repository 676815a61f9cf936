"""Alerts and incidents: list, read, the live stream, acknowledge, resolve, assign; response
figures per community.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from edge.agent import Desk
from edge.alerts import Incident
from edge.errors import AlertNotFound, AlertTransitionError, IncidentNotFound
from edge.model import Alert, AlertEvent, AlertStatus, Severity
from gateway.api.context import AgentDesk, Deliveries
from gateway.api.errors import ACTION_ERRORS, ERRORS
from gateway.api.schemas import (
    AlertAction,
    AlertDetail,
    AlertList,
    AssignAction,
    CommunitySummary,
    IncidentDetail,
    IncidentList,
    IsoTime,
    PathId,
    SummaryList,
)
from gateway.api.security import (
    Caller,
    Places,
    audit,
    masked,
    masked_event,
    masked_incident,
    may_act,
    places_of,
    visible,
)
from gateway.api.untrusted_text import safe_json
from gateway.auth import Authenticator
from gateway.privacy import sees_personal_data
from gateway.tokens import Principal

_log = logging.getLogger(__name__)

router = APIRouter()

STREAM_RECHECK_S = 1.0  # an open stream's token is checked this often (revocation, expiry)
STREAM_KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
_IDLE = object()  # no event within STREAM_RECHECK_S


@router.get("/v1/alerts", tags=["alerts"], responses=ERRORS)
async def list_alerts(
    caller: Caller,
    desk: AgentDesk,
    places: Places,
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
    # an empty cursor is the first page
    page = desk.alerts(scope, status, severity, limit, cursor or None)
    return AlertList(
        items=[masked(caller, a, places) for a in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/v1/alerts/stream",
    tags=["alerts"],
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
)
async def stream_alerts(
    caller: Caller,
    request: Request,
    desk: AgentDesk,
    places: Places,
    community: Annotated[list[str] | None, Query()] = None,
) -> StreamingResponse:
    """Server-sent events: every alert event as it is stored (`event:` is the kind).

    A comment line every 15 s keeps proxies from closing an idle stream. A consumer that falls
    1,000 events behind gets `event: overflow` and the stream ends: reconnect and list. The token is
    checked again every second: once it is revoked or expires the stream gets `event: revoked`
    and ends, and no event is sent after that check.
    """
    scope = caller.scope(community)
    wanted = set(scope) if scope is not None else None
    authenticator: Authenticator = request.app.state.authenticator

    async def events() -> AsyncIterator[bytes]:
        with desk.subscription() as queue:
            yield b": connected\n\n"
            clock = asyncio.get_running_loop().time
            checked = written = clock()
            while True:
                event: AlertEvent | object | None
                try:
                    # a timeout scope, not `wait_for` (a task of its own for every event: two
                    # more turns of a busy event loop between an SOS stored and sent)
                    async with asyncio.timeout(STREAM_RECHECK_S):
                        event = await queue.get()
                except TimeoutError:
                    event = _IDLE
                if clock() - checked >= STREAM_RECHECK_S:
                    # the token store is a SQLite file: read it off the event loop
                    if not await asyncio.to_thread(authenticator.still_valid, caller):
                        _log.info(
                            "live stream of token %s ended: revoked or expired", caller.token_id
                        )
                        yield b"event: revoked\ndata: {}\n\n"
                        return
                    checked = clock()
                if event is _IDLE:
                    if clock() - written >= STREAM_KEEPALIVE_S:
                        written = clock()
                        yield b": keep-alive\n\n"
                    continue
                if event is None:  # cut off (too far behind) or the agent is stopping
                    if not desk.stream_closed:
                        yield b"event: overflow\ndata: {}\n\n"
                    return
                assert isinstance(event, AlertEvent)
                if wanted is not None and event.alert.community not in wanted:
                    continue
                # escaped: device ids and notes are text from outside (gateway.api.untrusted_text)
                body = safe_json(masked_event(caller, event, places).model_dump_json())
                written = clock()
                yield f"id: {event.id}\nevent: {event.kind}\ndata: {body}\n\n".encode()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/v1/alerts/{alert_id}", tags=["alerts"], responses=ERRORS)
async def get_alert(
    alert_id: PathId,
    caller: Caller,
    request: Request,
    desk: AgentDesk,
    deliveries: Deliveries,
    places: Places,
) -> AlertDetail:
    """One alert with its event history and its notification channels' delivery attempts."""
    alert = _alert_of(request, caller, desk, alert_id)
    if sees_personal_data(caller, alert.community) and alert.unit is not None:
        audit(request, caller, alert.community, f"alert:{alert_id}", "read_personal_data")
    return AlertDetail(
        alert=masked(caller, alert, places),
        history=[masked_event(caller, e, places) for e in desk.history(alert_id)],
        deliveries=await deliveries.for_alert(alert_id) if deliveries is not None else [],
    )


def _alert_of(request: Request, caller: Principal, desk: Desk, alert_id: str) -> Alert:
    alert = desk.alert(alert_id)
    if alert is None:
        raise AlertNotFound(f"no alert {alert_id!r}")
    visible(request, caller, alert.community, f"alert:{alert_id}")
    return alert


async def _on_alert(
    request: Request,
    caller: Principal,
    desk: Desk,
    alert_id: str,
    action: str,
    act: Callable[[], Awaitable[Alert]],
) -> Alert:
    alert = _alert_of(request, caller, desk, alert_id)
    may_act(caller)
    try:
        done = await act()
    except AlertTransitionError:
        audit(request, caller, alert.community, f"alert:{alert_id}", action, "conflict")
        raise
    audit(request, caller, alert.community, f"alert:{alert_id}", action)
    return masked(caller, done, places_of(request))


@router.post("/v1/alerts/{alert_id}/ack", tags=["alerts"], responses=ACTION_ERRORS)
async def acknowledge(
    alert_id: PathId,
    caller: Caller,
    request: Request,
    desk: AgentDesk,
    body: AlertAction | None = None,
) -> Alert:
    """Acknowledge an active alert (409 if it is already acknowledged or resolved)."""
    note = body.note if body else None
    return await _on_alert(
        request,
        caller,
        desk,
        alert_id,
        "acknowledge",
        lambda: desk.acknowledge(alert_id, caller.token_id, note),
    )


@router.post("/v1/alerts/{alert_id}/resolve", tags=["alerts"], responses=ACTION_ERRORS)
async def resolve(
    alert_id: PathId,
    caller: Caller,
    request: Request,
    desk: AgentDesk,
    body: AlertAction | None = None,
) -> Alert:
    """Resolve an active or acknowledged alert (409 if it is already resolved)."""
    note = body.note if body else None
    return await _on_alert(
        request,
        caller,
        desk,
        alert_id,
        "resolve",
        lambda: desk.resolve(alert_id, caller.token_id, note),
    )


@router.post("/v1/alerts/{alert_id}/assign", tags=["alerts"], responses=ACTION_ERRORS)
async def assign(
    alert_id: PathId, caller: Caller, request: Request, desk: AgentDesk, body: AssignAction
) -> Alert:
    """Give an open alert to a person (409 if it is resolved); its status does not change."""
    return await _on_alert(
        request,
        caller,
        desk,
        alert_id,
        "assign",
        lambda: desk.assign(alert_id, body.assignee, caller.token_id, body.note),
    )


# -- incidents ---------------------------------------------------------------------------------


@router.get("/v1/incidents", tags=["incidents"], responses=ERRORS)
async def list_incidents(
    caller: Caller,
    desk: AgentDesk,
    places: Places,
    community: Annotated[list[str] | None, Query()] = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    min_alerts: Annotated[int, Query(ge=1, le=10_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> IncidentList:
    """Incidents newest first; `open=true` for those with an open alert, `min_alerts=2` for
    groups rather than single alerts."""
    scope = caller.scope(community)
    if scope == []:
        return IncidentList(items=[])
    return IncidentList(
        items=[
            masked_incident(caller, i, places)
            for i in desk.incidents(scope, open_only, min_alerts, limit)
        ]
    )


@router.get("/v1/incidents/{incident_id}", tags=["incidents"], responses=ERRORS)
async def get_incident(
    incident_id: PathId, caller: Caller, request: Request, desk: AgentDesk, places: Places
) -> IncidentDetail:
    """One incident with its alerts (its signals), oldest first."""
    incident, alerts = _incident_of(request, caller, desk, incident_id)
    return IncidentDetail(
        incident=masked_incident(caller, incident, places),
        alerts=[masked(caller, a, places) for a in alerts],
    )


def _incident_of(
    request: Request, caller: Principal, desk: Desk, incident_id: str
) -> tuple[Incident, list[Alert]]:
    found = desk.incident(incident_id)
    if found is None:
        raise IncidentNotFound(f"no incident {incident_id!r}")
    visible(request, caller, found[0].community, f"incident:{incident_id}")
    return found


async def _on_incident(
    request: Request,
    caller: Principal,
    desk: Desk,
    incident_id: str,
    action: str,
    note: str | None,
) -> Incident:
    incident, _ = _incident_of(request, caller, desk, incident_id)
    may_act(caller)
    done = await desk.act_on_incident(incident_id, action, caller.token_id, note)
    audit(request, caller, incident.community, f"incident:{incident_id}", action)
    return masked_incident(caller, done, places_of(request))


@router.post("/v1/incidents/{incident_id}/ack", tags=["incidents"], responses=ACTION_ERRORS)
async def acknowledge_incident(
    incident_id: PathId,
    caller: Caller,
    request: Request,
    desk: AgentDesk,
    body: AlertAction | None = None,
) -> Incident:
    """Acknowledge every active alert of the incident (one event each); 409 if none is."""
    note = body.note if body else None
    return await _on_incident(request, caller, desk, incident_id, "acknowledge", note)


@router.post("/v1/incidents/{incident_id}/resolve", tags=["incidents"], responses=ACTION_ERRORS)
async def resolve_incident(
    incident_id: PathId,
    caller: Caller,
    request: Request,
    desk: AgentDesk,
    body: AlertAction | None = None,
) -> Incident:
    """Resolve every open alert of the incident (one event each); 409 if none is open."""
    note = body.note if body else None
    return await _on_incident(request, caller, desk, incident_id, "resolve", note)


# -- response figures ----------------------------------------------------------------------------


@router.get("/v1/summary", tags=["alerts"], responses=ERRORS)
async def summary(
    caller: Caller,
    desk: AgentDesk,
    community: Annotated[list[str] | None, Query()] = None,
    since: IsoTime | None = None,
    until: IsoTime | None = None,
) -> SummaryList:
    """Response figures per community for alerts opened in [since, until) (default: 30 days)."""
    end = until or desk.now()
    start = since or end - timedelta(days=30)
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(status_code=400, detail="since and until need a time zone")
    wanted = [c for c in (community or desk.communities()) if caller.may_see(c)]
    return SummaryList(
        items=[CommunitySummary(**asdict(desk.summary(c, start, end))) for c in wanted]
    )
