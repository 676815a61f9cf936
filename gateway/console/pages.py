"""The console's pages: the live alarm board (with its fragment and event stream) and an alert's
page with its actions. Scopes, masking and the 404 for another community's alert are the alert
API's own (gateway.api.security); actions are recorded under the person's name.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from edge.agent import Desk
from edge.errors import AlertNotFound, AlertTransitionError
from edge.model import Alert, AlertStatus
from gateway.api.security import audit, masked, masked_event, places_of, visible
from gateway.console.access import PREFIX, Person, Visitor, check_csrf, form_of
from gateway.console.away import away_now
from gateway.console.board import Board, Filters, gather, is_life_safety, row_order
from gateway.console.care import visit_href
from gateway.console.fragments import whole_page_instead
from gateway.console.moment import moment
from gateway.console.page import render
from gateway.console.silence_pages import silence_of
from gateway.console.source import AlertDesk, AlertSource
from gateway.privacy import sees_personal_data

router = APIRouter()
OUTCOMES = ("real", "false_alarm", "test", "device_fault")
_KEEPALIVE_S = 15.0
AlertId = Annotated[str, Path(max_length=200)]
# alerts in one request for rows; more events waiting at once: the page redraws the whole board
MAX_ROWS = 10


def _desk(request: Request) -> AlertSource:
    desk: AlertSource = request.app.state.desk
    return desk


def _hands(request: Request) -> AlertDesk:
    """The desk that acts; a 403 in central mode (alerts are handled on their gateway)."""
    if not request.app.state.acts:
        raise HTTPException(status_code=403, detail="alerts are handled on their gateway")
    desk: AlertDesk = request.app.state.desk
    return desk


async def _gathered(request: Request, visitor: Visitor) -> tuple[Filters, Board]:
    filters = Filters.parse(dict(request.query_params))
    scope = visitor.principal.scope(None)
    if request.app.state.threaded_reads:  # a database of its own (central): off the event loop
        board = await run_in_threadpool(gather, _desk(request), scope, filters)
    else:  # the agent's store is its loop's (SQLite, one thread)
        board = gather(_desk(request), scope, filters, request.app.state.open_alerts)
    return filters, board


def _drawing(visitor: Visitor, filters: Filters, board: Board) -> dict[str, object]:
    """What the board's templates draw rows with, whole or a row at a time."""
    return {
        "visitor": visitor,
        "filters": filters,
        "board": board,
        # every unacknowledged life-safety alarm sounds, also one the cap leaves undrawn
        "alarm_ids": board.alarms,
        "alarm_set": set(board.alarms),  # a row's lookup: a list made 5,000 rows quadratic
        "is_life_safety": is_life_safety,
        "row_order": row_order,
    }


async def _board_context(request: Request, visitor: Visitor) -> dict[str, object]:
    filters, board = await _gathered(request, visitor)
    rows = [masked(visitor.principal, a, places_of(request)) for a in board.rows]
    return {**_drawing(visitor, filters, board), "rows": rows}


@router.get("/")
async def board_page(request: Request, visitor: Person) -> Response:
    """The alarm board, whole; the browser then keeps it live from the stream."""
    desk = _desk(request)
    # households away now: a gateway's register (central has none)
    away = away_now(desk, visitor.principal, places_of(request)) if isinstance(desk, Desk) else []
    return render(request, "board.html", {**(await _board_context(request, visitor)), "away": away})


@router.get("/board")
async def board_fragment(request: Request, visitor: Person) -> Response:
    """The board's rows and counters alone, fetched again on a reconnect and for a burst of
    events (a single event redraws its row: `board_rows`); opened directly, the board."""
    if (whole := whole_page_instead(request, "/console/")) is not None:
        return whole
    return render(request, "_board.html", await _board_context(request, visitor))


@router.get("/board/rows")
async def board_rows(
    request: Request,
    visitor: Person,
    alert: Annotated[list[str], Query(min_length=1, max_length=MAX_ROWS)],
) -> Response:
    """The rows of these alerts as the board (with its filters, query string kept) draws them
    now, with its counters: an alert event redraws its row alone, not the whole board.

    Scoped and masked as the board: an alert of another community is the 404 of one that does
    not exist (audited), whichever the filters; a resolved alert, or one the filters or the cap
    leave out, is not drawn, which tells the page to take its row away.
    """
    if (whole := whole_page_instead(request, "/console/")) is not None:
        return whole
    asked = [_alert_of(request, visitor, alert_id[:200]).id for alert_id in alert]
    filters, board = await _gathered(request, visitor)
    wanted = set(asked)
    if len(board.rows) < board.matching:
        # a row leaving a capped board pulls the next one in: its last rows, one per alert asked
        wanted.update(a.id for a in board.rows[-len(asked) :])
    drawn = [a for a in board.rows if a.id in wanted]
    alarms = set(board.alarms)
    return render(
        request,
        "_board_rows.html",
        {
            **_drawing(visitor, filters, board),
            "rows": [masked(visitor.principal, a, places_of(request)) for a in drawn],
            "asked": asked,
            "asked_alarms": [a for a in asked if a in alarms],
        },
    )


@router.get("/stream")
async def stream(request: Request, visitor: Person) -> StreamingResponse:
    """One `alert` event per alert event in the visitor's scope: the board redraws its row.

    It carries only the alert id, the kind and whether it is an unanswered life-safety alarm (the
    page reads the rest through the same checks as the API). On an overflow or a drop the browser reconnects, and the board refetches on reconnect,
    so an event missed in between is still on the board.
    """
    desk = _desk(request)
    principal = visitor.principal

    async def events() -> AsyncIterator[bytes]:
        with desk.subscription() as queue:
            yield b"retry: 1000\n: connected\n\n"
            while True:
                try:
                    # a timeout scope, not `wait_for` (a task of its own for every event), as
                    # the API's stream does
                    async with asyncio.timeout(_KEEPALIVE_S):
                        event = await queue.get()
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if event is None:  # cut off (too far behind) or stopping: the browser reconnects
                    return
                if not principal.may_see(event.alert.community):
                    continue
                alert = event.alert
                # an unanswered life-safety alarm: the board fetches its row at once, even in
                # the middle of a burst of other events (board.js)
                alarm = alert.status is AlertStatus.ACTIVE and is_life_safety(alert)
                data = json.dumps({"id": alert.id, "kind": event.kind.value, "alarm": alarm})
                yield f"event: alert\ndata: {data}\n\n".encode()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _alert_of(request: Request, visitor: Visitor, alert_id: str) -> Alert:
    """The alert, or the API's 404 (also for another community's alert, audited there)."""
    alert = _desk(request).alert(alert_id)
    if alert is None:
        raise HTTPException(status_code=404, detail=f"no alert {alert_id!r}")
    visible(request, visitor.principal, alert.community, f"alert:{alert_id}")
    return alert


async def _alert_page(
    request: Request,
    visitor: Visitor,
    alert_id: str,
    message: tuple[str, dict[str, str]] | None = None,
    status_code: int = 200,
) -> Response:
    alert = _alert_of(request, visitor, alert_id)
    caller = visitor.principal
    if sees_personal_data(caller, alert.community) and alert.unit is not None:
        audit(request, caller, alert.community, f"alert:{alert_id}", "read_personal_data")
    desk = _desk(request)
    deliveries = request.app.state.deliveries
    shown = masked(caller, alert, places_of(request))
    history = desk.history(alert_id)
    return render(
        request,
        "alert.html",
        {
            "visitor": visitor,
            "alert": shown,
            "unit_masked": alert.unit is not None and shown.unit is None,
            "history": [masked_event(caller, e, places_of(request)) for e in history],
            "deliveries": await deliveries.for_alert(alert_id) if deliveries is not None else [],
            "alarm": is_life_safety(alert) and alert.status == "active",
            "outcomes": OUTCOMES,
            "message": message,
            # households are a gateway's register: central has none
            "visit_href": visit_href(desk, caller, alert) if isinstance(desk, Desk) else None,
            **await moment(request, alert, visitor.lang, visitor.words, history),
            "silence": silence_of(request, alert),
        },
        status_code=status_code,
    )


@router.get("/alerts/{alert_id}")
async def alert_page(request: Request, visitor: Person, alert_id: AlertId) -> Response:
    """What happened, its timeline and deliveries, and the actions the visitor's role allows."""
    done = request.query_params.get("done")
    message = ("done", {"what": visitor.words.get(done, "")}) if done else None
    return await _alert_page(request, visitor, alert_id, message)


@router.post("/alerts/{alert_id}/{action}")
async def act(
    request: Request,
    visitor: Person,
    alert_id: AlertId,
    action: Annotated[str, Path(pattern="^(acknowledge|resolve|assign)$")],
) -> Response:
    """Acknowledge, assign or resolve (with an outcome) as the signed-in person; a second person
    acting at the same moment is told who was first, and nothing of theirs is applied."""
    form = await form_of(request)
    check_csrf(request, visitor, form)
    alert = _alert_of(request, visitor, alert_id)
    if not visitor.may_act:
        raise HTTPException(status_code=403, detail="read-only role")
    note = form.get("note", "").strip()[:1000] or None
    desk = _hands(request)
    try:
        if action == "acknowledge":
            await desk.acknowledge(alert_id, visitor.name, note)
        elif action == "resolve":
            outcome = form.get("outcome", "")
            if outcome not in OUTCOMES:
                raise HTTPException(status_code=400, detail="an outcome is needed")
            await desk.resolve(alert_id, visitor.name, f"[{outcome}] {note or ''}".strip())
        else:
            assignee = form.get("assignee", "").strip()[:100]
            if not assignee:
                raise HTTPException(status_code=400, detail="whom to assign to")
            await desk.assign(alert_id, assignee, visitor.name, note)
    except (AlertTransitionError, AlertNotFound):
        audit(request, visitor.principal, alert.community, f"alert:{alert_id}", action, "conflict")
        return await _alert_page(
            request, visitor, alert_id, _conflict(desk, visitor, alert_id), status_code=409
        )
    audit(request, visitor.principal, alert.community, f"alert:{alert_id}", action)
    return RedirectResponse(f"{PREFIX}/alerts/{alert_id}?done={action}", status_code=303)


def _conflict(desk: AlertSource, visitor: Visitor, alert_id: str) -> tuple[str, dict[str, str]]:
    """Who got there first: the last person's transition in the alert's history."""
    words = visitor.words
    for event in reversed(desk.history(alert_id)):
        if event.kind in ("acknowledged", "resolved"):
            return (
                "conflict",
                {
                    "who": event.actor,
                    "at": f"{event.at:%H:%M:%S}",
                    "what": words[f"ev_{event.kind.value}"],
                },
            )
    return ("conflict", {"who": "?", "at": "", "what": ""})
