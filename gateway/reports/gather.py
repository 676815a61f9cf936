"""Who may read a community's care report, and the report as they may read it: a care worker's
covers her households only; a platform's or an admin's names households by their pseudonyms."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import tzinfo

from edge.agent import Desk
from edge.enrich import split_household_id
from edge.errors import HouseholdError
from gateway.household_access import list_filter
from gateway.privacy import RESPONDERS, Pseudonyms
from gateway.reports.care import CareReport, build_report, month_alerts, month_bounds, parse_month
from gateway.tokens import Principal, Role

_READERS = frozenset({*RESPONDERS, Role.CARE_WORKER, Role.PLATFORM, Role.ADMIN})
MAX_VISITS = 1_000_000  # a month of visits of the largest community, with room to spare


class ReportRefused(PermissionError):
    """This role reads no care reports (a family member, an edge agent)."""


class ReportHidden(LookupError):
    """Another community's report: answered like one that does not exist."""


async def gather_report(
    desk: Desk,
    principal: Principal,
    community: str,
    month: str,
    zone: tzinfo,
    places: Pseudonyms,
) -> CareReport:
    """The month's report for `principal` (ReportError for a bad month).

    The register and the visits are read, and the figures made, in a worker thread (their stores
    are thread-safe): for 10,000 households that is about half a second the alarms' event loop
    does not wait for. The alerts are read here, on the loop that owns the alert store.
    """
    if principal.role not in _READERS:
        raise ReportRefused(f"a {principal.role} token reads no care reports")
    if not principal.may_see(community):
        raise ReportHidden(community)
    year, number = parse_month(month)
    start, end = month_bounds(year, number, zone)
    alerts = month_alerts(
        lambda cursor: desk.alerts([community], None, None, 500, cursor), start, end
    )
    narrowed = list_filter(principal)
    now = desk.now()

    def build() -> CareReport:
        households = desk.households.list([community], **narrowed)
        visits = desk.visits.list(communities=[community], since=start, until=end, limit=MAX_VISITS)
        return build_report(
            community,
            year,
            number,
            zone,
            households,
            visits,
            alerts,
            now,
            homes_only=bool(narrowed),
        )

    report = await asyncio.to_thread(build)
    if principal.role in (Role.PLATFORM, Role.ADMIN):
        return masked_report(report, places)
    return report


def masked_report(report: CareReport, places: Pseudonyms) -> CareReport:
    """The report with each household named by its pseudonym and no away reasons."""

    def hid(value: str) -> str:
        try:
            community, building, unit = split_household_id(value)
        except HouseholdError:
            return value
        return f"{community}/{building}/{places.unit(community, building, unit)}"

    return dataclasses.replace(
        report,
        not_visited=tuple(hid(h) for h in report.not_visited),
        inactivity=tuple(
            dataclasses.replace(i, household=hid(i.household)) for i in report.inactivity
        ),
        devices=tuple(dataclasses.replace(d, household=hid(d.household)) for d in report.devices),
        away=tuple((hid(h), "") for h, _ in report.away),
        rows=tuple(
            dataclasses.replace(r, household=hid(r.household), away="") for r in report.rows
        ),
    )
