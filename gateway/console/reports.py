"""The care report in the console: the month's page with its charts, and its PDF and CSV.

Who reads what is gateway.reports.gather's: a care worker her households, a platform or an admin
the community's households by pseudonym, a family member nothing. Every read is audited.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, tzinfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from edge.agent import Desk
from gateway.api.security import audit, places_of
from gateway.console.access import Anyone, Visitor
from gateway.console.page import render
from gateway.reports import CareReport, ReportError
from gateway.reports.care import duration
from gateway.reports.csv_file import render_csv
from gateway.reports.gather import ReportHidden, ReportRefused, gather_report
from gateway.reports.pdf import FontMissing, render_pdf
from gateway.reports.words import WORDS

router = APIRouter()
_log = logging.getLogger(__name__)


def _month_default(now: datetime, zone: tzinfo) -> str:
    local = now.astimezone(zone)
    return f"{local.year}-{local.month:02d}"


async def _report(
    request: Request, visitor: Visitor, community: str | None, month: str | None, what: str
) -> CareReport:
    desk: Desk = request.app.state.desk
    zone: tzinfo = request.app.state.zone
    principal = visitor.principal
    if community is None:
        mine = sorted(principal.communities - {"*"}) or desk.communities()
        if not mine:
            raise HTTPException(status_code=404, detail="no community")
        community = mine[0]
    try:
        report = await gather_report(
            desk,
            principal,
            community,
            month or _month_default(desk.now(), zone),
            zone,
            places_of(request),
        )
    except ReportRefused:
        raise HTTPException(status_code=403, detail="no care reports for this role") from None
    except ReportHidden:
        audit(request, principal, community, f"report:{community}", "cross_tenant", "refused")
        raise HTTPException(status_code=404, detail="no such community") from None
    except ReportError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    audit(request, principal, community, f"report:{community}/{report.label}", f"read_{what}")
    return report


@router.get("/reports/care")
async def care_report_page(
    request: Request,
    visitor: Anyone,
    community: str | None = Query(default=None, max_length=64),
    month: str | None = Query(default=None, max_length=7),
) -> Response:
    """The month's care report with its charts, and links to its PDF and CSV."""
    report = await _report(request, visitor, community, month, "report")
    desk: Desk = request.app.state.desk
    communities = sorted(visitor.principal.communities - {"*"}) or desk.communities()
    return render(
        request,
        "care_report.html",
        {
            "visitor": visitor,
            "report": report,
            "rw": WORDS[visitor.lang],
            "communities": communities,
            "duration": duration,
            "peak": max(report.alerts_per_day, default=0) or 1,
            "query": f"community={report.community}&month={report.label}",
        },
    )


@router.get("/reports/care.pdf")
async def care_report_pdf(
    request: Request,
    visitor: Anyone,
    community: str | None = Query(default=None, max_length=64),
    month: str | None = Query(default=None, max_length=7),
) -> Response:
    """The report as a PDF (A4, Chinese first)."""
    report = await _report(request, visitor, community, month, "report_pdf")
    try:
        # about 2 s for 10,000 households (bench.care): in a worker thread, off the alarms' loop
        pdf = await asyncio.to_thread(render_pdf, report)
    except FontMissing as exc:  # the gateway's install step was skipped: say which package
        _log.error("care report PDF: %s", exc)
        return Response(str(exc), status_code=503, media_type="text/plain; charset=utf-8")
    return Response(
        pdf,
        media_type="application/pdf",
        headers=_download(f"care-report-{report.community}-{report.label}.pdf"),
    )


@router.get("/reports/care.csv")
async def care_report_csv(
    request: Request,
    visitor: Anyone,
    community: str | None = Query(default=None, max_length=64),
    month: str | None = Query(default=None, max_length=7),
) -> Response:
    """The report's households as CSV (UTF-8 with BOM for Excel)."""
    report = await _report(request, visitor, community, month, "report_csv")
    return Response(
        render_csv(report),
        media_type="text/csv; charset=utf-8",
        headers=_download(f"care-report-{report.community}-{report.label}.csv"),
    )


def _download(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
