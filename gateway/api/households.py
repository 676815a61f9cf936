"""Households and visits: the register (CRUD, CSV import and export) and care workers' visits.

Scoped like every route (another community's household is a 404, audited) and narrowed further
for care workers and family members to their own households (gateway.household_access). Every
read of household data is in the audit log, masked or not; the audit log names a household by
its pseudonym, never by its unit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Annotated
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from edge.agent import Desk
from edge.enrich import (
    Household,
    HouseholdVisits,
    Visit,
    VisitSpec,
    VisitStatus,
    household_id,
    month_start,
)
from edge.errors import HouseholdError
from gateway.api.context import AgentDesk
from gateway.api.errors import ACTION_ERRORS, ERRORS, ErrorResponse
from gateway.api.household_schemas import (
    DueHousehold,
    DueList,
    HouseholdBody,
    HouseholdDetail,
    HouseholdList,
    HouseholdView,
    ImportReport,
    VisitBody,
    VisitList,
    VisitView,
)
from gateway.api.schemas import PathId
from gateway.api.security import HouseholdCaller, audit, masked, places_of, visible
from gateway.api.untrusted_text import IDENTIFIER_PATTERN
from gateway.household_access import (
    list_filter,
    may_keep,
    may_visit,
    sees_household,
    sees_in_full,
    shown,
)
from gateway.households_csv import ImportRefused, Problem, export_csv, parse_csv
from gateway.privacy import RESPONDERS, Pseudonyms, mask_name
from gateway.tokens import Principal, Role, TokenStore

router = APIRouter()
_SHANGHAI = ZoneInfo("Asia/Shanghai")
_VISITS_SHOWN = 10  # on a household's page: the latest ten


def zone_of(request: Request) -> tzinfo:
    """The community's time zone (months of visits begin at its midnight)."""
    zone: tzinfo | None = getattr(request.app.state, "zone", None)
    return zone or _SHANGHAI


def audit_name(places: Pseudonyms, household: Household) -> str:
    """How the audit log names a household: by building and pseudonym, never by unit."""
    pseudonym = places.unit(household.community, household.building, household.unit)
    return f"household:{household.building}/{pseudonym}"


def find_household(
    request: Request,
    caller: Principal,
    desk: Desk,
    community: str,
    building: str,
    unit: str,
) -> Household:
    """The household the caller may see, or the 404 of one that does not exist (audited when
    it exists in another community or belongs to someone else's care)."""
    places = places_of(request)
    missing = f"no household {community}/{building}/{unit}"
    _visible(request, caller, community, building, unit)
    household = desk.households.get(household_id(community, building, unit))
    if household is None and unit.startswith("h-"):
        # a masked caller names a household by the pseudonym it was shown
        household = next(
            (
                h
                for h in desk.households.list([community], building=building)
                if places.unit(h.community, h.building, h.unit) == unit
            ),
            None,
        )
    if household is None:
        raise HTTPException(status_code=404, detail=missing)
    if not sees_household(caller, household):
        audit(request, caller, community, audit_name(places, household), "not_own", "refused")
        raise HTTPException(status_code=404, detail=missing)
    return household


def _visible(request: Request, caller: Principal, community: str, building: str, unit: str) -> None:
    """Another community's household: the 404 of a missing one (ids do not leak), audited."""
    if not caller.may_see(community):
        pseudonym = places_of(request).unit(community, building, unit)
        audit(
            request,
            caller,
            community,
            f"household:{building}/{pseudonym}",
            "cross_tenant",
            "refused",
        )
        raise HTTPException(status_code=404, detail=f"no household {community}/{building}/{unit}")


def view_of(request: Request, caller: Principal, desk: Desk, household: Household) -> HouseholdView:
    full = sees_in_full(caller, household)
    away = household.is_away(desk.now()) or desk.is_away(
        household.community, household.building, household.unit
    )
    return HouseholdView.of(
        shown(caller, household, places_of(request)), away=away, masked=not full
    )


def audit_read(request: Request, caller: Principal, household: Household, action: str) -> None:
    """A read of household data: `read_personal_data` in full, `read_masked` otherwise."""
    kind = "read_personal_data" if sees_in_full(caller, household) else "read_masked"
    audit(request, caller, household.community, audit_name(places_of(request), household), action)
    if action != kind:
        audit(request, caller, household.community, audit_name(places_of(request), household), kind)


def audit_many(
    request: Request, caller: Principal, households: list[Household], action: str, verb: str
) -> None:
    """A read of many households, once per community: `<verb>_personal_data` when every one of
    that community's is seen in full, `<verb>_masked` otherwise."""
    for name in sorted({h.community for h in households}):
        full = all(sees_in_full(caller, h) for h in households if h.community == name)
        audit(request, caller, name, action, f"{verb}_personal_data" if full else f"{verb}_masked")


def token_name(request: Request, caller: Principal) -> str | None:
    """The name the caller's token was given (`tokens create --name`), if any."""
    tokens: TokenStore | None = getattr(request.app.state, "tokens", None)
    if tokens is None:
        return None
    return next((t.name for t in tokens.list() if t.id == caller.token_id), None)


def visit_view(caller: Principal, household: Household, visit: Visit) -> VisitView:
    """A visit as the caller may see it: the note only with the household in full."""
    full = sees_in_full(caller, household)
    return VisitView(
        **visit.model_dump(exclude={"note", "household", "community", "spec", "recorded_by"}),
        household=visit.household if full else "",
        note=visit.note if full else "",
    )


def _keeper(caller: Principal, community: str) -> None:
    if not may_keep(caller, community):
        raise HTTPException(
            status_code=403,
            detail=f"a {caller.role.value} token may not change the household register "
            "(property managers and admins keep it)",
        )


def _store(desk: Desk, caller: Principal, household: Household, expect: int | None) -> Household:
    try:
        return desk.households.put(household, desk.now(), expect_revision=expect)
    except HouseholdError as exc:
        raise HTTPException(status_code=409, detail=conflict_message(caller, exc)) from None


_HOUSEHOLD_ID = re.compile(r"household [^\s/]+/[^\s/]+/[^\s:;,]+")


def conflict_message(caller: Principal, exc: HouseholdError) -> str:
    """The store's refusal; for a caller who sees households masked, without the other
    household's unit (a device already taken names where it is)."""
    if caller.role in RESPONDERS:
        return str(exc)
    return _HOUSEHOLD_ID.sub("another household", str(exc))


# -- the register -------------------------------------------------------------------------------


@router.get("/v1/households", tags=["households"], responses=ERRORS)
async def list_households(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: Annotated[list[str] | None, Query()] = None,
    building: str | None = None,
    living_alone: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HouseholdList:
    """Households of the caller's communities (a care worker's: hers; a family member's: their
    relative's), in id order. Residents and family are masked unless the caller responds there."""
    scope = caller.scope(community)
    # in a worker thread: a page of 1,000 records is parsed in ~80 ms, the alarms' loop goes on
    found = await run_in_threadpool(
        lambda: desk.households.list(
            scope,
            building=building,
            living_alone=living_alone,
            after=cursor or None,
            limit=limit + 1,
            **list_filter(caller),
        )
    )
    page = found[:limit]
    audit_many(request, caller, page, "households:list", "read")
    return HouseholdList(
        items=[view_of(request, caller, desk, h) for h in page],
        next_cursor=page[-1].id if len(found) > limit else None,
    )


@router.post(
    "/v1/households",
    tags=["households"],
    status_code=201,
    responses={**ACTION_ERRORS, 422: {"model": ErrorResponse}},
)
async def create_household(
    caller: HouseholdCaller, request: Request, desk: AgentDesk, body: HouseholdBody
) -> HouseholdView:
    """Add a household to the register (409 if it is there already, or a device is another's)."""
    household = body.record()
    places = places_of(request)
    visible(request, caller, household.community, audit_name(places, household))
    _keeper(caller, household.community)
    stored = _store(desk, caller, household, 0)
    await desk.households_changed()
    audit(request, caller, stored.community, audit_name(places, stored), "household_create")
    return view_of(request, caller, desk, stored)


@router.get(
    "/v1/households/export",
    tags=["households"],
    response_class=Response,
    responses={
        **ERRORS,
        200: {
            "description": "the register as CSV",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    },
)
async def export_households(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """The register as CSV for Excel (UTF-8 with BOM, Chinese headers), masked unless the caller
    responds in the household's community (or is its care worker or family)."""
    if caller.role is Role.FAMILY:
        raise HTTPException(status_code=403, detail="a family token reads, it does not export")
    scope = caller.scope(community)
    households = await run_in_threadpool(lambda: desk.households.list(scope, **list_filter(caller)))
    places = places_of(request)
    audit_many(request, caller, households, "households:export", "export")
    text = await run_in_threadpool(
        lambda: export_csv([shown(caller, h, places) for h in households])
    )
    stamp = desk.now().astimezone(zone_of(request)).strftime("%Y%m%d")
    filename = quote(f"住户登记-{stamp}.csv")
    return Response(
        content=text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="households-{stamp}.csv"; '
            f"filename*=UTF-8''{filename}",
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/v1/households/import",
    tags=["households"],
    response_model=ImportReport,
    responses={**ACTION_ERRORS, 422: {"model": ErrorResponse}},
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def import_households(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: Annotated[str, Query(pattern=IDENTIFIER_PATTERN, max_length=64)],
) -> Response | ImportReport:
    """Create or replace households of one community from a CSV file (as `export` writes it;
    UTF-8 or GB18030; `Content-Type: text/csv`).

    Every line is checked first; with any problem nothing is stored and the answer (422) lists
    each problem by line number and column (never the cell's value: it may be personal data).
    """
    visible(request, caller, community, "households:import")
    _keeper(caller, community)
    data = await request.body()
    try:
        lines, problems = await run_in_threadpool(parse_csv, data)
    except ImportRefused as exc:
        return _import_refused([], str(exc))
    for line, household in lines:
        if household.community != community:
            problems.append(
                Problem(line, "小区", f"{household.community!r}: this import is for {community!r}")
            )
    if problems:
        return _import_refused(problems, f"{len(problems)} problem(s): nothing was imported")
    try:
        now = desk.now()
        count = await run_in_threadpool(desk.households.put_many, [h for _, h in lines], now)
    except HouseholdError as exc:
        message = conflict_message(caller, exc)
        raise HTTPException(status_code=409, detail=f"{message}; nothing was imported") from None
    await desk.households_changed()
    audit(request, caller, community, "households:import", "household_import")
    return ImportReport(imported=count, problems=[])


def _import_refused(problems: list[Problem], message: str) -> JSONResponse:
    details = [{"line": str(p.line), "column": p.column, "problem": p.problem} for p in problems]
    return JSONResponse(
        status_code=422,
        content={"error": {"code": "invalid_request", "message": message, "details": details}},
    )


@router.get("/v1/households/{community}/{building}/{unit}", tags=["households"], responses=ERRORS)
async def get_household(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: PathId,
    building: PathId,
    unit: PathId,
) -> HouseholdDetail:
    """One household with its open alerts, latest visits and this month's visit status."""
    household = find_household(request, caller, desk, community, building, unit)
    audit_read(request, caller, household, "read_household")
    view = view_of(request, caller, desk, household)
    visits = desk.visits.list(households=[household.id], limit=_VISITS_SHOWN)
    status = None
    if household.care_worker is not None:
        status = desk.visits.status([household], desk.now(), zone_of(request))[0].status
    return HouseholdDetail(
        **view.model_dump(),
        open_alerts=[
            masked(caller, a, places_of(request)) if not sees_in_full(caller, household) else a
            for a in desk.household_alerts(household)
        ],
        visits=[visit_view(caller, household, v) for v in visits],
        visit_status=status,
    )


@router.put(
    "/v1/households/{community}/{building}/{unit}",
    tags=["households"],
    responses={**ACTION_ERRORS, 422: {"model": ErrorResponse}},
)
async def put_household(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: PathId,
    building: PathId,
    unit: PathId,
    body: HouseholdBody,
) -> HouseholdView:
    """Create or replace a household; `revision` (when not 0) must be the one read, or 409."""
    places = places_of(request)
    _visible(request, caller, community, building, unit)
    _keeper(caller, community)
    household = body.record()
    if (household.community, household.building, household.unit) != (community, building, unit):
        raise HTTPException(
            status_code=400,
            detail=f"the body names {household.id}, the path {community}/{building}/{unit}",
        )
    stored = _store(desk, caller, household, household.revision or None)
    await desk.households_changed()
    audit(request, caller, community, audit_name(places, stored), "household_update")
    return view_of(request, caller, desk, stored)


@router.delete(
    "/v1/households/{community}/{building}/{unit}",
    tags=["households"],
    status_code=204,
    responses=ACTION_ERRORS,
)
async def delete_household(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: PathId,
    building: PathId,
    unit: PathId,
) -> Response:
    """Remove a household from the register (its visits stay, for the monthly reports)."""
    household = find_household(request, caller, desk, community, building, unit)
    _keeper(caller, community)
    desk.households.delete(household.id)
    audit(request, caller, community, audit_name(places_of(request), household), "household_delete")
    return Response(status_code=204)


# -- visits --------------------------------------------------------------------------------------


def record_visit(
    desk: Desk,
    caller: Principal,
    household: Household,
    body: VisitBody,
    worker_name: str | None,
) -> Visit:
    """Record a visit by the caller (HTTPException for a visit the caller may not record, or an
    alert that is not this household's)."""
    if not may_visit(caller, household):
        raise HTTPException(
            status_code=403, detail=f"a {caller.role.value} token may not record visits"
        )
    now = desk.now()
    if body.alert_id is not None:
        alert = desk.alert(body.alert_id)
        devices = set(household.device_ids) | {f"household:{household.unit}"}
        if (
            alert is None
            or alert.community != household.community
            or alert.device_id not in devices
        ):
            raise HTTPException(
                status_code=400, detail=f"no alert {body.alert_id!r} of this household"
            )
    at = body.at or now
    if at > now:
        raise HTTPException(status_code=400, detail="a visit cannot be recorded in the future")
    worker = caller.person or f"token:{caller.token_id}"
    care = household.care_worker
    if body.visitor_name is not None:
        worker_name = body.visitor_name
    elif care is not None and caller.person is not None and care.person_id == caller.person:
        worker_name = care.name
    if worker_name is None:
        worker_name = worker
    spec = VisitSpec(
        at=at,
        condition=body.condition,
        note=body.note,
        follow_up=body.follow_up,
        alert_id=body.alert_id,
    )
    return desk.visits.record(
        household,
        spec,
        worker=worker,
        worker_name=worker_name,
        recorded_by=caller.token_id,
        now=now,
    )


@router.post(
    "/v1/households/{community}/{building}/{unit}/visits",
    tags=["visits"],
    status_code=201,
    responses={**ACTION_ERRORS, 422: {"model": ErrorResponse}},
)
async def post_visit(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: PathId,
    building: PathId,
    unit: PathId,
    body: VisitBody,
) -> VisitView:
    """Record a visit (探访): when, how the resident is, a note, whether to follow up, and the
    alert that called for it. Care workers record visits to their households only."""
    household = find_household(request, caller, desk, community, building, unit)
    visit = record_visit(desk, caller, household, body, token_name(request, caller))
    audit(request, caller, community, audit_name(places_of(request), household), "visit_record")
    return visit_view(caller, household, visit)


@router.get(
    "/v1/households/{community}/{building}/{unit}/visits", tags=["visits"], responses=ERRORS
)
async def household_visits(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: PathId,
    building: PathId,
    unit: PathId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> VisitList:
    """A household's visits, newest first."""
    household = find_household(request, caller, desk, community, building, unit)
    audit_read(request, caller, household, "read_visits")
    visits = desk.visits.list(households=[household.id], limit=limit)
    return VisitList(items=[visit_view(caller, household, v) for v in visits])


def due_this_month(
    desk: Desk, caller: Principal, zone: tzinfo, communities: list[str] | None, worker: str | None
) -> tuple[datetime, list[HouseholdVisits]]:
    """The caller's households with a care worker and their visit status this month."""
    narrowed = list_filter(caller)
    if worker is not None and "care_worker" not in narrowed:
        narrowed["care_worker"] = worker
    households = [
        h for h in desk.households.list(communities, **narrowed) if h.care_worker is not None
    ]
    now = desk.now()
    return month_start(now, zone), desk.visits.status(households, now, zone)


@router.get("/v1/visits/due", tags=["visits"], responses=ERRORS)
async def visits_due(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: Annotated[list[str] | None, Query()] = None,
    worker: Annotated[str | None, Query(max_length=64)] = None,
) -> DueList:
    """This month's visits per household (a care worker: hers): overdue first, then due, then
    visited. A household is overdue when never visited or not for 30 days."""
    if caller.role is Role.FAMILY:
        raise HTTPException(status_code=403, detail="a family token reads its household only")
    zone = zone_of(request)
    start, rows = await run_in_threadpool(
        due_this_month, desk, caller, zone, caller.scope(community), worker
    )
    places = places_of(request)
    for name in sorted({r.household.community for r in rows}):
        audit(request, caller, name, "visits:due", "read_visits")
    items = []
    for row in rows:
        h = row.household
        full = sees_in_full(caller, h)
        resident = h.residents[0].name if h.residents else None
        items.append(
            DueHousehold(
                household=h.id if full else shown(caller, h, places).id,
                community=h.community,
                building=h.building,
                unit=h.unit if full else places.unit(h.community, h.building, h.unit),
                resident=resident if full or resident is None else mask_name(resident),
                care_worker=h.care_worker.name if h.care_worker else None,
                status=row.status,
                visits_this_month=row.visits_this_month,
                last_visit_at=row.last_visit.at if row.last_visit else None,
            )
        )
    count = {s: sum(1 for r in rows if r.status is s) for s in VisitStatus}
    return DueList(
        month_start=start.astimezone(UTC),
        visited=count[VisitStatus.VISITED],
        due=count[VisitStatus.DUE],
        overdue=count[VisitStatus.OVERDUE],
        items=items,
    )
