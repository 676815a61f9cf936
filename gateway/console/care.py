"""The care pages of the console (phone first): this month's visits, a household, and the form a
care worker records a visit with. The same scope, masking and audit as the household API
(gateway.api.households); a care worker sees her households, a family member their relative's.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from edge.agent import Desk
from edge.enrich import Condition, Household, VisitStatus, household_id
from edge.model import Alert
from edge.rules import RhythmView
from gateway.api.household_schemas import VisitBody
from gateway.api.households import (
    audit_name,
    audit_read,
    due_this_month,
    find_household,
    record_visit,
)
from gateway.api.security import audit, masked, places_of
from gateway.api.untrusted_text import one_line
from gateway.auth import ACTORS
from gateway.console.access import PREFIX, Anyone, Visitor, check_csrf, form_of
from gateway.console.page import render
from gateway.household_access import may_visit, sees_in_full, shown
from gateway.privacy import mask_name
from gateway.reports.words import WORDS as REPORT_WORDS
from gateway.shard_link import ShardUnavailable
from gateway.tokens import Principal, Role

_log = logging.getLogger(__name__)

router = APIRouter(prefix="/care")
HOME = f"{PREFIX}/care"
Part = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=64)]
_VISITS_SHOWN = 10


def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def _zone(request: Request) -> tzinfo:
    zone: tzinfo = request.app.state.zone
    return zone


@router.get("")
async def care_home(request: Request, visitor: Anyone) -> Response:
    """This month's visits, overdue first (a care worker: hers); a family member goes straight
    to their relative's household."""
    desk = _desk(request)
    caller = visitor.principal
    if caller.role is Role.FAMILY:
        own = desk.households.list(caller.scope(None), family_person=caller.person, limit=2)
        if len(own) == 1:
            h = own[0]
            return RedirectResponse(
                f"{HOME}/households/{h.community}/{h.building}/{h.unit}", status_code=303
            )
        return render(request, "care_home.html", _family_context(request, visitor, own))
    worker = request.query_params.get("worker") or None
    start, rows = await run_in_threadpool(
        due_this_month, desk, caller, _zone(request), caller.scope(None), worker
    )
    places = places_of(request)
    for name in sorted({r.household.community for r in rows}):
        audit(request, caller, name, "visits:due", "read_visits")
    items = []
    for row in rows:
        h = row.household
        full = sees_in_full(caller, h)
        resident = h.residents[0].name if h.residents else ""
        items.append(
            {
                "row": row,
                "household": shown(caller, h, places),
                "resident": resident if full else mask_name(resident) if resident else "",
                "href": f"{HOME}/households/{h.community}/{h.building}/"
                + (h.unit if full else places.unit(h.community, h.building, h.unit)),
            }
        )
    others = await run_in_threadpool(_all_with_worker, desk, visitor)
    workers = sorted({(w.person_id, w.name) for h in others if (w := h.care_worker)})
    counts = {s.value: sum(1 for r in rows if r.status is s) for s in VisitStatus}
    return render(
        request,
        "care_home.html",
        {
            "visitor": visitor,
            "items": items,
            "counts": counts,
            "month": start,
            "workers": workers if caller.role is not Role.CARE_WORKER else [],
            "worker": worker or "",
        },
    )


def visit_href(desk: Desk, caller: Principal, alert: Alert) -> str | None:
    """The form to record a visit this alert called for, when the alert is of a household in
    the register and the caller may record visits there (the alert page links to it)."""
    if alert.device_id.startswith("household:"):
        unit = alert.device_id.removeprefix("household:")
        household = desk.households.get(household_id(alert.community, alert.building, unit))
    else:
        household = desk.households.household_of_device(alert.device_id)
    if household is None or household.community != alert.community:
        return None
    if not may_visit(caller, household):
        return None
    place = f"{household.community}/{household.building}/{household.unit}"
    return f"{HOME}/households/{place}/visit?alert={quote(alert.id, safe='')}"


def _all_with_worker(desk: Desk, visitor: Visitor) -> list[Household]:
    caller = visitor.principal
    if caller.role is Role.CARE_WORKER:
        return []
    return [h for h in desk.households.list(caller.scope(None)) if h.care_worker is not None]


def _family_context(request: Request, visitor: Visitor, own: list[Household]) -> dict[str, object]:
    return {
        "visitor": visitor,
        "items": [
            {
                "row": None,
                "household": h,
                "resident": h.residents[0].name if h.residents else "",
                "href": f"{HOME}/households/{h.community}/{h.building}/{h.unit}",
            }
            for h in own
        ],
        "counts": {},
        "month": None,
        "workers": [],
        "worker": "",
    }


async def _household_page(
    request: Request,
    visitor: Visitor,
    community: str,
    building: str,
    unit: str,
    message: tuple[str, str] | None = None,
) -> Response:
    desk = _desk(request)
    caller = visitor.principal
    household = find_household(request, caller, desk, community, building, unit)
    audit_read(request, caller, household, "read_household")
    full = sees_in_full(caller, household)
    places = places_of(request)
    view = shown(caller, household, places)
    alerts = [a if full else masked(caller, a, places) for a in desk.household_alerts(household)]
    visits = desk.visits.list(households=[household.id], limit=_VISITS_SHOWN)
    status = None
    if household.care_worker is not None:
        status = desk.visits.status([household], desk.now(), _zone(request))[0]
    now = desk.now()
    rhythm: list[RhythmView] = []
    rhythm_unread: str | None = None  # the shard that keeps it, when it did not answer
    if full:
        try:
            rhythm = await desk.rhythm_of(household.community, household.building, household.unit)
        except ShardUnavailable as exc:  # run --shards N: the owning shard is restarting
            _log.warning("rhythm of %s not read: %s", household.id, exc)
            rhythm_unread = exc.shard or "?"
    return render(
        request,
        "care_household.html",
        {
            "visitor": visitor,
            "h": view,
            "full": full,
            "away": household.is_away(now)
            or desk.is_away(household.community, household.building, household.unit),
            "alerts": alerts,
            "alerts_linked": caller.role not in (Role.CARE_WORKER, Role.FAMILY),
            "visits": visits,
            "status": status,
            "may_visit": may_visit(caller, household),
            "may_mark_away": may_mark_away(caller, household),
            "today": f"{now.astimezone(_zone(request)):%Y-%m-%d}",
            "base": f"{HOME}/households/{view.community}/{view.building}/{view.unit}",
            "message": message,
            # her learned day (gateway/console/templates/_rhythm.html): for those who see her
            # in full, as when she is at home is personal data
            "rhythm": rhythm,
            "rhythm_unread": rhythm_unread,
            "rhythm_words": REPORT_WORDS[visitor.lang],
        },
    )


@router.get("/households/{community}/{building}/{unit}")
async def household_page(
    request: Request, visitor: Anyone, community: Part, building: Part, unit: Part
) -> Response:
    """A household: who lives there, family to call, care worker, away, alerts, visits."""
    done = request.query_params.get("done")
    message = {"visit": ("ok", "visit_saved"), "away": ("ok", "away_saved")}.get(done or "")
    return await _household_page(request, visitor, community, building, unit, message)


def _visit_form(
    request: Request,
    visitor: Visitor,
    household: Household,
    values: dict[str, str],
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    view = shown(visitor.principal, household, places_of(request))
    return render(
        request,
        "care_visit.html",
        {
            "visitor": visitor,
            "h": view,
            "conditions": [c.value for c in Condition],
            "values": values,
            "problem": problem,
            "base": f"{HOME}/households/{view.community}/{view.building}/{view.unit}",
        },
        status_code=status_code,
    )


@router.get("/households/{community}/{building}/{unit}/visit")
async def visit_form(
    request: Request, visitor: Anyone, community: Part, building: Part, unit: Part
) -> Response:
    """The visit form: the time is now (in the community's zone), the rest to fill in."""
    desk = _desk(request)
    household = find_household(request, visitor.principal, desk, community, building, unit)
    if not may_visit(visitor.principal, household):
        raise HTTPException(status_code=403, detail="may not record visits")
    alert = request.query_params.get("alert", "")[:128]
    local = desk.now().astimezone(_zone(request))
    values = {"at": f"{local:%Y-%m-%dT%H:%M}", "alert_id": alert, "note": "", "condition": ""}
    return _visit_form(request, visitor, household, values)


@router.post("/households/{community}/{building}/{unit}/visit")
async def save_visit(
    request: Request, visitor: Anyone, community: Part, building: Part, unit: Part
) -> Response:
    """Record the visit as the signed-in person; a problem shows the form again, as typed."""
    form = await form_of(request)
    check_csrf(request, visitor, form)
    desk = _desk(request)
    caller = visitor.principal
    household = find_household(request, caller, desk, community, building, unit)
    values = {
        "at": form.get("at", ""),
        "condition": form.get("condition", ""),
        "note": form.get("note", "")[:500],
        "follow_up": "on" if form.get("follow_up") else "",
        "alert_id": form.get("alert_id", "")[:128],
    }
    if not may_visit(caller, household):
        return _visit_form(request, visitor, household, values, "visit_not_allowed", 403)
    try:
        at = datetime.fromisoformat(values["at"])
    except ValueError:
        return _visit_form(request, visitor, household, values, "visit_bad_time", 400)
    if at.tzinfo is None:
        at = at.replace(tzinfo=_zone(request))
    if values["condition"] not in {c.value for c in Condition}:
        return _visit_form(request, visitor, household, values, "visit_bad_condition", 400)
    try:
        body = VisitBody(
            at=at.astimezone(UTC),
            condition=Condition(values["condition"]),
            note=values["note"].strip(),
            follow_up=bool(values["follow_up"]),
            alert_id=values["alert_id"] or None,
        )
    except ValidationError:  # a control or bidi character in the note
        return _visit_form(request, visitor, household, values, "visit_bad_text", 400)
    try:
        record_visit(desk, caller, household, body, visitor.name)
    except HTTPException as exc:
        key = "visit_bad_alert" if "alert" in str(exc.detail) else "visit_future"
        return _visit_form(request, visitor, household, values, key, exc.status_code)
    audit(
        request,
        caller,
        household.community,
        audit_name(places_of(request), household),
        "visit_record",
    )
    view = shown(caller, household, places_of(request))
    return RedirectResponse(
        f"{HOME}/households/{view.community}/{view.building}/{view.unit}?done=visit",
        status_code=303,
    )


def may_mark_away(caller: Principal, household: Household) -> bool:
    """The roles that act, and the household's care worker (as PUT .../away allows)."""
    if caller.role is Role.CARE_WORKER:
        return may_visit(caller, household)
    return caller.role in ACTORS and caller.may_see(household.community)


@router.post("/households/{community}/{building}/{unit}/away")
async def save_away(
    request: Request, visitor: Anyone, community: Part, building: Part, unit: Part
) -> Response:
    """Away until a day (hospital, visiting family), or back home; as PUT .../away does."""
    form = await form_of(request)
    check_csrf(request, visitor, form)
    desk = _desk(request)
    caller = visitor.principal
    household = find_household(request, caller, desk, community, building, unit)
    if not may_mark_away(caller, household):
        raise HTTPException(status_code=403, detail="may not mark it away")
    away = form.get("away") == "1"
    until = None
    if away:
        try:
            day = date.fromisoformat(form.get("until", ""))
        except ValueError:
            return await _household_page(
                request, visitor, community, building, unit, ("problem", "away_bad_date")
            )
        # back on the morning after the last day away, in the community's time zone
        until = datetime.combine(day + timedelta(days=1), time(), tzinfo=_zone(request))
        if until <= desk.now():
            return await _household_page(
                request, visitor, community, building, unit, ("problem", "away_bad_date")
            )
    reason = form.get("reason", "").strip()[:200] or None
    try:
        one_line(reason or "")
    except ValueError:
        return await _household_page(
            request, visitor, community, building, unit, ("problem", "visit_bad_text")
        )
    await desk.set_away(
        household.community, household.building, household.unit, away, until, reason
    )
    audit(
        request, caller, household.community, audit_name(places_of(request), household), "set_away"
    )
    view = shown(caller, household, places_of(request))
    return RedirectResponse(
        f"{HOME}/households/{view.community}/{view.building}/{view.unit}?done=away",
        status_code=303,
    )
