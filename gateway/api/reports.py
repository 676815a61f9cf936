"""The monthly care report through the API, for platforms and scripts: JSON, CSV or PDF.

The same figures, scopes and masking as the console's page (gateway/reports/gather.py); every
read is audited."""

from __future__ import annotations

import asyncio
from datetime import tzinfo
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from gateway.api.context import AgentDesk
from gateway.api.errors import ERRORS
from gateway.api.schemas import PathId
from gateway.api.security import HouseholdCaller, audit, places_of
from gateway.reports import ReportError
from gateway.reports.csv_file import render_csv
from gateway.reports.gather import ReportHidden, ReportRefused, gather_report
from gateway.reports.pdf import FontMissing, render_pdf

router = APIRouter()
_DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")
Month = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM, e.g. 2026-11")]


@router.get(
    "/v1/reports/care/{community}",
    tags=["households"],
    responses={**ERRORS, 200: {"content": {"text/csv": {}, "application/pdf": {}}}},
)
async def care_report(
    caller: HouseholdCaller,
    request: Request,
    desk: AgentDesk,
    community: PathId,
    month: Month,
    format: Literal["json", "csv", "pdf"] = "json",
) -> Response:
    """A community's care report for a calendar month (in its time zone): visits, alerts
    followed up with the times to acknowledge and to arrive, by category and by care worker,
    no-sign-of-life alerts and outcomes, devices offline or low on battery.

    A care worker gets her own households' report; a platform or an admin every household by
    its pseudonym; a family token none (403).
    """
    zone: tzinfo = getattr(request.app.state, "zone", None) or _DEFAULT_ZONE
    try:
        report = await gather_report(desk, caller, community, month, zone, places_of(request))
    except ReportRefused as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    except ReportHidden:
        audit(request, caller, community, f"report:{community}", "cross_tenant", "refused")
        raise HTTPException(status_code=404, detail=f"no community {community!r}") from None
    except ReportError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    audit(request, caller, community, f"report:{community}/{report.label}", f"read_report_{format}")
    name = f"care-report-{report.community}-{report.label}"
    if format == "csv":
        return Response(
            render_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if format == "pdf":
        try:
            pdf = await asyncio.to_thread(render_pdf, report)
        except FontMissing as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
        )
    body = jsonable_encoder(report)
    body["visit_rate"] = report.visit_rate
    body["follow_up_rate"] = report.alerts.follow_up_rate
    return JSONResponse(body)
