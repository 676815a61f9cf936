"""The building board for the office's big screen: buildings, floors and units coloured by state
(alarm, offline, ok), told by text and shape as well as colour, kept live by the alert stream
(and redrawn every 30 s for liveness that raised no alert yet).

At scale the board is large (5,000 units are ~750 KB), so an alert event does not fetch it again:
the browser asks `/console/buildings/places?alert=<id>` for the buildings of the alerts it was
told of, and replaces just those (a few KB each).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from edge.agent import Desk
from edge.model import DeviceRef
from gateway.api.security import places_of
from gateway.console.access import Person, Visitor
from gateway.console.board import is_life_safety
from gateway.console.buildings import Building, gather
from gateway.console.device_status import DeviceStatus, PlaceState, open_alerts_by_device, statuses
from gateway.console.fragments import whole_page_instead
from gateway.console.page import render
from gateway.privacy import sees_personal_data

router = APIRouter()
_SCAN = 5000  # devices per registry scan
MAX_PLACES = 50  # alert ids in one request for buildings; more at once: the browser redraws all


def _scope(request: Request, visitor: Visitor) -> tuple[list[str] | None, str]:
    """The communities the board shows (None: all) and the `community` filter asked for."""
    scope = visitor.principal.scope(None)
    wanted = request.query_params.get("community", "").strip()[:64]
    if wanted:
        scope = [c for c in (scope or [wanted]) if c == wanted]
    return scope, wanted


def _devices(desk: Desk, communities: list[str] | None, building: str | None) -> list[DeviceRef]:
    refs: list[DeviceRef] = []
    start: int | None = 0
    while start is not None and communities != []:
        page, start = desk.devices(
            communities=set(communities) if communities is not None else None,
            building=building,
            model=None,
            status=None,
            start=start,
            limit=_SCAN,
        )
        refs.extend(page)
    return refs


def _buildings(
    request: Request, visitor: Visitor, found: list[DeviceStatus]
) -> tuple[list[Building], dict[str, list[str]]]:
    """The buildings of `found`, and each one's active life-safety alarms (by its key)."""
    principal = visitor.principal
    places = places_of(request)

    def unit_name(device: DeviceStatus) -> str | None:
        ref = device.ref
        if ref.unit is None or sees_personal_data(principal, ref.community):
            return ref.unit
        return places.unit(ref.community, ref.building, ref.unit)

    buildings = gather(found, unit_name)
    alarms = {
        b.key: [
            a.id
            for d in b.devices
            for a in d.open_alerts
            if is_life_safety(a) and a.status == "active"
        ]
        for b in buildings
    }
    return buildings, alarms


def _context(request: Request, visitor: Visitor) -> dict[str, object]:
    desk: Desk = request.app.state.desk
    scope, wanted = _scope(request, visitor)
    found = statuses(desk, _devices(desk, scope, None), open_alerts_by_device(desk, scope))
    buildings, alarms = _buildings(request, visitor, found)
    return {
        "visitor": visitor,
        "buildings": buildings,
        "alarms": alarms,
        "states": list(PlaceState),
        "community": wanted,
    }


@router.get("/buildings")
async def buildings_page(request: Request, visitor: Person) -> Response:
    """The whole board; the browser keeps it live from the stream."""
    return render(request, "buildings.html", _context(request, visitor))


@router.get("/buildings/board")
async def buildings_fragment(request: Request, visitor: Person) -> Response:
    """The buildings alone: on reconnect and every 30 s (liveness that raised no alert); opened
    directly, the buildings page."""
    if (whole := whole_page_instead(request, "/console/buildings")) is not None:
        return whole
    return render(request, "_buildings.html", _context(request, visitor))


@router.get("/buildings/places")
async def buildings_of_alerts(
    request: Request,
    visitor: Person,
    alert: Annotated[list[str] | None, Query(max_length=MAX_PLACES)] = None,
) -> Response:
    """The buildings of these alerts alone (each a `<section>` whose id the board has), for the
    browser to swap in on an alert event. An alert the visitor may not see, that does not exist,
    or of a community the board is not showing adds nothing (as if there were no event)."""
    desk: Desk = request.app.state.desk
    scope, _ = _scope(request, visitor)
    wanted: set[tuple[str, str]] = set()
    for alert_id in alert or []:
        found = desk.alert(alert_id[:200])
        if found is None or (scope is not None and found.community not in scope):
            continue
        wanted.add((found.community, found.building))
    devices: list[DeviceStatus] = []
    for community in sorted({c for c, _ in wanted}):
        open_alerts = open_alerts_by_device(desk, [community])
        for building in sorted(b for c, b in wanted if c == community):
            refs = _devices(desk, [community], building)
            devices.extend(statuses(desk, refs, open_alerts))
    buildings, alarms = _buildings(request, visitor, devices)
    return render(
        request,
        "_building_list.html",
        {"visitor": visitor, "buildings": buildings, "alarms": alarms, "states": list(PlaceState)},
    )
