"""Devices in the console: the registry with each device's status (online, offline, low battery,
tamper, in alarm) and when it was last heard, the unregistered devices (admins: the installer's
view, as in the API), and one device's page with a chart of its readings and its alerts.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import Response

from edge.agent import Desk
from edge.enrich import Status
from edge.identifier import id_problem
from edge.model import Alert
from gateway.api.security import audit, masked, places_of, topic_visible, visible
from gateway.console.access import Person
from gateway.console.device_status import open_alerts_by_device, reported_flags, statuses
from gateway.console.moment import readings_of
from gateway.console.page import render
from gateway.privacy import sees_personal_data
from gateway.tokens import Role

router = APIRouter()
PAGE = 200  # devices per page
FLAGS = ("low_battery", "tamper", "alarm")
RECENT_ALERTS = 500  # of the community's newest alerts, those of the device are listed
# any text: an id outside the identifier rule names no device, and gets the "not found" page
# (which shows at most 200 characters of it), not a JSON 422 in the middle of the console
DeviceId = Annotated[str, Path()]


def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


@router.get("/devices")
async def devices_page(request: Request, visitor: Person) -> Response:
    """A page of registered devices, filtered by building, liveness or a flag."""
    desk = _desk(request)
    query = request.query_params
    building = query.get("building", "").strip()[:64] or None
    status_name = query.get("status", "")
    status = (
        Status[status_name.upper()] if status_name in ("online", "offline", "unknown") else None
    )
    flag = query.get("flag", "") if query.get("flag", "") in FLAGS else ""
    cursor = query.get("cursor", "")
    start = int(cursor) if cursor.isdigit() and len(cursor) <= 12 else 0
    scope = visitor.principal.scope(None)
    refs, next_slot = desk.devices(
        communities=set(scope) if scope is not None else None,
        building=building,
        model=None,
        status=status,
        start=start,
        limit=PAGE,
    )
    rows = statuses(desk, refs, open_alerts_by_device(desk, scope))
    if flag:
        rows = [r for r in rows if getattr(r, flag)]
    admin = visitor.principal.role is Role.ADMIN
    unregistered = (
        [e for e in desk.unregistered() if topic_visible(visitor.principal, desk, e.topic)][:200]
        if admin
        else []
    )
    return render(
        request,
        "devices.html",
        {
            "visitor": visitor,
            "rows": rows,
            "shows_unit": lambda ref: sees_personal_data(visitor.principal, ref.community),
            "building": building or "",
            "status": status_name if status is not None else "",
            "flag": flag,
            "next_slot": next_slot,
            "admin": admin,
            "unregistered": unregistered,
        },
    )


def _alerts_of(desk: Desk, community: str, device_id: str) -> list[Alert]:
    """The device's open alerts and those among its community's newest, newest first."""
    recent = desk.alerts([community], None, None, RECENT_ALERTS, None).items
    found = {a.id: a for a in recent if a.device_id == device_id}
    ref = desk.device(device_id)
    if ref is not None:
        found.update({a.id: a for a in desk.open_alerts_of(ref)})
    return sorted(found.values(), key=lambda a: a.opened_at, reverse=True)


@router.get("/devices/{device_id}")
async def device_page(request: Request, visitor: Person, device_id: DeviceId) -> Response:
    """One device: where, its status, its readings over the last 24 h, its alerts."""
    desk = _desk(request)
    ref = desk.device(device_id) if id_problem(device_id) is None else None
    if ref is None:
        raise HTTPException(status_code=404, detail="no such device")
    principal = visitor.principal
    visible(request, principal, ref.community, f"device:{device_id}")
    alerts = _alerts_of(desk, ref.community, device_id)
    responder = sees_personal_data(principal, ref.community)
    if responder and ref.unit is not None:
        audit(request, principal, ref.community, f"device:{device_id}", "read_personal_data")
    now = desk.now()
    places = places_of(request)
    readings = await readings_of(
        request,
        device_id,
        ref.community,
        ref.category,
        now - timedelta(hours=24),
        now,
        None,
        visitor.words,
        lang=visitor.lang,
    )
    (status,) = statuses(desk, [ref], {device_id: [a for a in alerts if a.status != "resolved"]})
    # its own word on tamper and battery, from its newest readings (no rule may watch them)
    status = dataclasses.replace(status, reported=reported_flags(r.fields for r in readings.rows))
    return render(
        request,
        "device.html",
        {
            "visitor": visitor,
            "device": status,
            "unit": ref.unit if responder else None,
            "unit_masked": ref.unit is not None and not responder,
            "heartbeat": desk.heartbeat_of(ref.model),
            "readings": readings,
            "alerts": [masked(principal, a, places) for a in alerts],
        },
    )
