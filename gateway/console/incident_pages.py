"""Incidents in the console, "one incident, handled end to end": the list, one incident with its
member alerts and the handling trail of all of them in time order, and its actions: acknowledge
every active alert, assign every open alert to a person (the alert API's assignment, alert by
alert), close (resolve every open alert) with an outcome and a summary.
Scopes, masking and roles are the incident API's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response

from edge.agent import Desk
from edge.alerts import Incident
from edge.errors import AlertNotFound, AlertTransitionError, IncidentNotFound
from edge.model import Alert, AlertEvent
from gateway.api.security import audit, masked, masked_event, masked_incident, places_of, visible
from gateway.api.untrusted_text import free_text
from gateway.console.access import PREFIX, Person, Visitor, check_csrf, form_of
from gateway.console.page import render
from gateway.console.pages import OUTCOMES

router = APIRouter()
LIMIT = 500
IncidentId = Annotated[str, Path(max_length=64)]


def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


@router.get("/incidents")
async def incidents_page(request: Request, visitor: Person) -> Response:
    """Incidents newest first: open ones, or with `all=1` closed ones too."""
    every = request.query_params.get("all") == "1"
    principal = visitor.principal
    found = _desk(request).incidents(principal.scope(None), not every, 1, LIMIT)
    places = places_of(request)
    return render(
        request,
        "incidents.html",
        {
            "visitor": visitor,
            "incidents": [masked_incident(principal, i, places) for i in found],
            "every": every,
        },
    )


def _incident_of(
    request: Request, visitor: Visitor, incident_id: str
) -> tuple[Incident, list[Alert]]:
    found = _desk(request).incident(incident_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no incident {incident_id!r}")
    visible(request, visitor.principal, found[0].community, f"incident:{incident_id}")
    return found


def trail(desk: Desk, alerts: list[Alert]) -> list[tuple[AlertEvent, Alert]]:
    """Every event of every member alert, oldest first, each with its alert."""
    events = [(e, a) for a in alerts for e in desk.history(a.id)]
    return sorted(events, key=lambda pair: pair[0].at)


async def _incident_page(
    request: Request,
    visitor: Visitor,
    incident_id: str,
    message: tuple[str, dict[str, str]] | None = None,
    status_code: int = 200,
) -> Response:
    incident, alerts = _incident_of(request, visitor, incident_id)
    principal = visitor.principal
    places = places_of(request)
    desk = _desk(request)
    return render(
        request,
        "incident.html",
        {
            "visitor": visitor,
            "incident": masked_incident(principal, incident, places),
            "alerts": [masked(principal, a, places) for a in alerts],
            "trail": [
                (masked_event(principal, e, places), masked(principal, a, places))
                for e, a in trail(desk, alerts)
            ],
            "outcomes": OUTCOMES,
            "message": message,
            "assignees": sorted(
                {a.assignee for a in alerts if a.assignee and a.status != "resolved"}
            ),
        },
        status_code=status_code,
    )


@router.get("/incidents/{incident_id}")
async def incident_page(request: Request, visitor: Person, incident_id: IncidentId) -> Response:
    """One incident: what it is, its alerts, the handling trail, and the actions."""
    done = request.query_params.get("done")
    message = ("done", {"what": visitor.words.get(done, "")}) if done else None
    return await _incident_page(request, visitor, incident_id, message)


@router.post("/incidents/{incident_id}/{action}")
async def act_on_incident(
    request: Request,
    visitor: Person,
    incident_id: IncidentId,
    action: Annotated[str, Path(pattern="^(acknowledge|assign|close)$")],
) -> Response:
    """Acknowledge every active alert, assign every open one to a person, or close: resolve
    every open one with the summary."""
    form = await form_of(request)
    check_csrf(request, visitor, form)
    incident, _ = _incident_of(request, visitor, incident_id)
    if not visitor.may_act:
        raise HTTPException(status_code=403, detail="read-only role")
    note = form.get("note", "").strip()[:1000] or None
    try:
        if note is not None:
            free_text(note)
    except ValueError as exc:
        return await _incident_page(
            request, visitor, incident_id, ("bad_input", {"why": str(exc)}), 400
        )
    if action == "assign":
        return await _assign(request, visitor, incident, form.get("assignee", ""), note)
    if action == "close":
        outcome = form.get("outcome", "")
        if outcome not in OUTCOMES or note is None:
            return await _incident_page(request, visitor, incident_id, ("summary_needed", {}), 400)
        note = f"[{outcome}] {note}"
    desk = _desk(request)
    try:
        await desk.act_on_incident(
            incident_id, "acknowledge" if action == "acknowledge" else "resolve", visitor.name, note
        )
    except (AlertTransitionError, IncidentNotFound):
        audit(
            request, visitor.principal, incident.community, f"incident:{incident_id}", action,
            "conflict",
        )  # fmt: skip
        return await _incident_page(
            request, visitor, incident_id, ("nothing_to_do", {}), status_code=409
        )
    audit(request, visitor.principal, incident.community, f"incident:{incident_id}", action)
    done = "ack_incident" if action == "acknowledge" else "close_incident"
    return RedirectResponse(f"{PREFIX}/incidents/{incident_id}?done={done}", status_code=303)


async def _assign(
    request: Request, visitor: Visitor, incident: Incident, assignee: str, note: str | None
) -> Response:
    """Every open alert of the incident to `assignee`, through the alert API's own assignment
    (each alert's history records it); an alert resolved meanwhile is left alone, and if none
    was left to assign (all resolved, or all with that person already) the page says so."""
    assignee = assignee.strip()[:100]
    try:
        if assignee:
            free_text(assignee)
    except ValueError as exc:
        return await _incident_page(
            request, visitor, incident.id, ("bad_input", {"why": str(exc)}), 400
        )
    if not assignee:
        return await _incident_page(request, visitor, incident.id, ("assignee_needed", {}), 400)
    desk = _desk(request)
    found = desk.incident(incident.id)
    members = found[1] if found is not None else []
    assigned = 0
    for alert in members:
        if alert.status == "resolved" or alert.assignee == assignee:
            continue
        try:
            await desk.assign(alert.id, assignee, visitor.name, note)
        except (AlertTransitionError, AlertNotFound):
            continue  # resolved since the list was read
        assigned += 1
    where = f"incident:{incident.id}"
    if not assigned:
        audit(request, visitor.principal, incident.community, where, "assign", "conflict")
        return await _incident_page(request, visitor, incident.id, ("nothing_to_do", {}), 409)
    audit(request, visitor.principal, incident.community, where, "assign")
    return RedirectResponse(
        f"{PREFIX}/incidents/{incident.id}?done=assign_incident", status_code=303
    )
