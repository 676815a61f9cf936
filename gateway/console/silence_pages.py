"""Silences in the console: hold back a device's notifications from its alert's page
("maintenance on this device for 2 h"; its alerts are still recorded), list them, end one early.
Scopes and roles are the silence API's: another community's silence is a 404, a read-only role
sees no buttons and is refused anyway.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from edge.agent import Desk
from edge.alerts import Silence, SilenceSpec
from edge.errors import AlertTransitionError
from edge.model import Alert
from gateway.api.security import audit, visible
from gateway.api.untrusted_text import free_text
from gateway.console.access import PREFIX, Person, Visitor, check_csrf, form_of
from gateway.console.page import render

router = APIRouter()
HOURS = (1, 2, 4, 8, 24)  # what the alert page offers; a longer silence is the API's
SilenceId = Annotated[str, Path(max_length=64)]


def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def _mine(visitor: Visitor, silence: Silence) -> bool:
    """In the visitor's scope, as in GET /v1/silences."""
    principal = visitor.principal
    return principal.all_communities or (
        silence.community is not None and principal.may_see(silence.community)
    )


def _may_act(visitor: Visitor) -> None:
    if not visitor.may_act:
        raise HTTPException(status_code=403, detail="read-only role")


def silence_of(request: Request, alert: Alert) -> Silence | None:
    """The silence holding back the alert's notifications now, if one does."""
    desk = getattr(request.app.state, "desk", None)
    if not isinstance(desk, Desk):
        return None
    now = desk.now()
    return next((s for s in desk.silences(now, 500) if s.active(now) and s.matches(alert)), None)


@router.get("/silences")
async def silences_page(request: Request, visitor: Person) -> Response:
    """Silences not over yet (or with `all=1` every one), newest first, in the visitor's scope."""
    desk = _desk(request)
    every = request.query_params.get("all") == "1"
    now = desk.now()
    found = [s for s in desk.silences(None if every else now, 500) if _mine(visitor, s)]
    created = desk.silence(request.query_params.get("created", "")[:64])
    message: tuple[str, dict[str, str]] | None = None
    if created is not None and _mine(visitor, created) and created.ends_at is not None:
        message = (
            "silence_created",
            {"t": f"{created.ends_at.astimezone(request.app.state.zone):%Y-%m-%d %H:%M}"},
        )
    elif request.query_params.get("done") == "expire":
        message = ("silence_expired", {})
    return render(
        request,
        "silences.html",
        {
            "visitor": visitor,
            "silences": found,
            "every": every,
            "now": now,
            "message": message,
        },
    )


@router.post("/silences")
async def silence_from_alert(request: Request, visitor: Person) -> Response:
    """A silence of the alert's device for some hours, created from its page."""
    form = await form_of(request)
    check_csrf(request, visitor, form)
    desk = _desk(request)
    alert = desk.alert(form.get("alert", "")[:200])
    if alert is None:
        raise HTTPException(status_code=404, detail="no such alert")
    visible(request, visitor.principal, alert.community, f"alert:{alert.id}")
    _may_act(visitor)
    try:
        hours = int(form.get("hours", ""))
        if hours not in HOURS:
            raise ValueError(f"hours must be one of {', '.join(map(str, HOURS))}")
        reason = free_text(form.get("reason", "").strip())
        spec = SilenceSpec(
            community=alert.community,
            device_id=alert.device_id,
            ends_at=desk.now() + timedelta(hours=hours),
            reason=reason,
        )
    except (ValueError, ValidationError) as exc:
        why = str(exc.errors()[0]["msg"]) if isinstance(exc, ValidationError) else str(exc)
        return render(
            request,
            "message.html",
            {"visitor": visitor, "message_key": "bad_input", "message_args": {"why": why}},
            status_code=400,
        )
    silence = desk.add_silence(spec, visitor.name)
    audit(request, visitor.principal, alert.community, f"silence:{silence.id}", "silence")
    return RedirectResponse(f"{PREFIX}/silences?created={silence.id}", status_code=303)


@router.post("/silences/{silence_id}/expire")
async def expire(request: Request, visitor: Person, silence_id: SilenceId) -> Response:
    """End a silence now (kept for the record)."""
    form = await form_of(request)
    check_csrf(request, visitor, form)
    desk = _desk(request)
    found = desk.silence(silence_id)
    if found is None or not _mine(visitor, found):
        if found is not None:
            visible(request, visitor.principal, found.community or "*", f"silence:{silence_id}")
        raise HTTPException(status_code=404, detail=f"no silence {silence_id!r}")
    _may_act(visitor)
    try:
        desk.expire_silence(silence_id, visitor.name)
    except AlertTransitionError:
        return render(
            request,
            "message.html",
            {"visitor": visitor, "message_key": "silence_over"},
            status_code=409,
        )
    audit(request, visitor.principal, found.community, f"silence:{silence_id}", "expire_silence")
    return RedirectResponse(f"{PREFIX}/silences?done=expire", status_code=303)
