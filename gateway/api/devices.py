"""Devices and their liveness, devices the registry does not know, and households' away flag."""

from __future__ import annotations

import base64
import itertools
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from edge.agent import Desk
from edge.alerts import InvalidCursor
from edge.enrich import Status
from edge.model import DeviceRef
from gateway.api.context import AgentDesk
from gateway.api.errors import ACTION_ERRORS, ERRORS, ErrorResponse
from gateway.api.schemas import (
    AwayBody,
    DeviceDetail,
    DeviceIdPath,
    DeviceList,
    DeviceView,
    PathId,
    UnregisteredView,
)
from gateway.api.security import (
    Caller,
    HouseholdCaller,
    admin_only,
    audit,
    masked,
    may_act,
    places_of,
    topic_visible,
    visible,
)
from gateway.household_access import may_visit, sees_household
from gateway.privacy import mask_name, mask_payload, mask_phone, mask_text, sees_personal_data
from gateway.tokens import PERSONAL_ROLES, Principal

router = APIRouter()


def _device_view(caller: Principal, desk: Desk, ref: DeviceRef) -> dict[str, Any]:
    state = desk.device_state(ref)
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


@router.get("/v1/devices", tags=["devices"], responses={**ERRORS, 400: {"model": ErrorResponse}})
async def list_devices(
    caller: Caller,
    desk: AgentDesk,
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
    scope = caller.scope(community)
    refs, next_slot = desk.devices(
        communities=set(scope) if scope is not None else None,
        building=building,
        model=model,
        status=Status[status.upper()] if status is not None else None,
        start=start,
        limit=limit,
    )
    return DeviceList(
        items=[DeviceView(**_device_view(caller, desk, ref)) for ref in refs],
        next_cursor=str(next_slot) if next_slot is not None else None,
    )


@router.get("/v1/devices/unregistered", tags=["devices"], responses=ERRORS)
async def list_unregistered(
    caller: Caller, desk: AgentDesk, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
) -> list[UnregisteredView]:
    """Topics of messages from devices the registry does not know, or no profile claims.

    Each message is also kept as a dead letter; register the device (the registry file is
    reloaded on change) and it leaves this list. Admin tokens only (the installer's view).
    """
    admin_only(caller)
    entries = (e for e in desk.unregistered() if topic_visible(caller, desk, e.topic))
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


@router.get("/v1/devices/{device_id}", tags=["devices"], responses=ERRORS)
async def get_device(
    device_id: DeviceIdPath, caller: Caller, request: Request, desk: AgentDesk
) -> DeviceDetail:
    """One device: where it is, its liveness, battery and link, who to call, open alerts.

    The resident reference, emergency contacts and unit go in full to the responders of the
    device's community (each such read is audited); others see them masked.
    """
    ref = desk.device(device_id)
    if ref is None:
        raise HTTPException(status_code=404, detail=f"no device {device_id!r}")
    visible(request, caller, ref.community, f"device:{device_id}")
    details = desk.device_details(device_id)
    contacts = list(details.emergency_contacts) if details else []
    responder = sees_personal_data(caller, ref.community)
    if responder and details is not None:
        audit(request, caller, ref.community, f"device:{device_id}", "read_personal_data")
    if not responder:
        contacts = [
            c.model_copy(update={"name": mask_name(c.name), "phone": mask_phone(c.phone)})
            for c in contacts
        ]
    return DeviceDetail(
        **_device_view(caller, desk, ref),
        install_date=details.install_date if details else None,
        resident_ref=details.resident_ref if details and responder else None,
        emergency_contacts=contacts,
        open_alerts=[masked(caller, a, places_of(request)) for a in desk.open_alerts_of(ref)],
    )


@router.put(
    "/v1/households/{community}/{building}/{unit}/away",
    tags=["households"],
    responses=ACTION_ERRORS,
)
async def set_away(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: PathId,
    building: PathId,
    unit: PathId,
    body: AwayBody,
) -> AwayBody:
    """Mark a household away (absence rules skip it; an open absence alert resolves) or back.

    The roles that act, and a care worker for her own households in the register (hospital,
    visiting family). The audit log, which admins read, names the household by its pseudonym
    (gateway.privacy).
    """
    household = f"household:{building}/{places_of(request).unit(community, building, unit)}"
    visible(request, caller, community, household)
    if caller.role in PERSONAL_ROLES:
        record = desk.households.get(f"{community}/{building}/{unit}")
        if record is None or not sees_household(caller, record):
            raise HTTPException(
                status_code=404, detail=f"no household {community}/{building}/{unit}"
            )
        if not may_visit(caller, record):
            raise HTTPException(
                status_code=403, detail=f"a {caller.role.value} token may not mark it away"
            )
    else:
        may_act(caller)
    if body.away and body.until is not None and body.until <= desk.now():
        raise HTTPException(status_code=400, detail="`until` is already past")
    away = await desk.set_away(community, building, unit, body.away, body.until, body.reason)
    audit(request, caller, community, household, "set_away")
    return AwayBody(
        away=away, until=body.until if away else None, reason=body.reason if away else None
    )
