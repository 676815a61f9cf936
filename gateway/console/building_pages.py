"""The building board for the office's big screen: buildings, floors and units coloured by state
(alarm, offline, ok), told by text and shape as well as colour, kept live by the alert stream
(and redrawn every 30 s for liveness that raised no alert yet).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from edge.agent import Desk
from edge.model import DeviceRef
from gateway.api.security import places_of
from gateway.console.access import Person, Visitor
from gateway.console.board import is_life_safety
from gateway.console.buildings import gather
from gateway.console.device_status import DeviceStatus, PlaceState, open_alerts_by_device, statuses
from gateway.console.page import render
from gateway.privacy import sees_personal_data

router = APIRouter()
_SCAN = 5000  # devices per registry scan


def _context(request: Request, visitor: Visitor) -> dict[str, object]:
    desk: Desk = request.app.state.desk
    principal = visitor.principal
    scope = principal.scope(None)
    wanted = request.query_params.get("community", "").strip()[:64]
    if wanted:
        scope = [c for c in (scope or [wanted]) if c == wanted]
    refs: list[DeviceRef] = []
    start: int | None = 0
    while start is not None and scope != []:
        page, start = desk.devices(
            communities=set(scope) if scope is not None else None,
            building=None,
            model=None,
            status=None,
            start=start,
            limit=_SCAN,
        )
        refs.extend(page)
    found = statuses(desk, refs, open_alerts_by_device(desk, scope))
    places = places_of(request)

    def unit_name(device: DeviceStatus) -> str | None:
        ref = device.ref
        if ref.unit is None or sees_personal_data(principal, ref.community):
            return ref.unit
        return places.unit(ref.community, ref.building, ref.unit)

    alarms = [a for d in found for a in d.open_alerts if is_life_safety(a) and a.status == "active"]
    return {
        "visitor": visitor,
        "buildings": gather(found, unit_name),
        "states": list(PlaceState),
        "community": wanted,
        "alarm_ids": [a.id for a in alarms],
    }


@router.get("/buildings")
async def buildings_page(request: Request, visitor: Person) -> Response:
    """The whole board; the browser keeps it live from the stream."""
    return render(request, "buildings.html", _context(request, visitor))


@router.get("/buildings/board")
async def buildings_fragment(request: Request, visitor: Person) -> Response:
    """The buildings alone, fetched again on every alert event."""
    return render(request, "_buildings.html", _context(request, visitor))
