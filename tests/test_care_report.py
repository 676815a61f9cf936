"""The care report's parts without a world: months, CSV cells a spreadsheet would run, masking for
a platform, a care worker's own households, and the PDF's font missing."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.enrich import CareWorker, Condition, Household, Visit
from edge.model import Alert, AlertStatus, Severity
from gateway.privacy import Pseudonyms
from gateway.reports import ReportError, build_report, parse_month
from gateway.reports import pdf as pdf_module
from gateway.reports.csv_file import render_csv
from gateway.reports.gather import masked_report

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, tzinfo=ZONE)


def _home(unit: str, worker: str = "w1", name: str = "=HYPERLINK(1)") -> Household:
    return Household(
        community="c1",
        building="b1",
        unit=unit,
        living_alone=True,
        care_worker=CareWorker(person_id=worker, name=name),
    )


def _visit(home: Household, day: int) -> Visit:
    at = datetime(2026, 11, day, 10, tzinfo=ZONE)
    assert home.care_worker is not None
    return Visit(
        at=at,
        condition=Condition.GOOD,
        id=f"v{day}",
        household=home.id,
        community="c1",
        worker=home.care_worker.person_id,
        worker_name=home.care_worker.name,
        recorded_at=at,
        recorded_by="t",
    )


def _alert(unit: str, at: datetime, acked: bool) -> Alert:
    return Alert(
        id=f"a-{unit}",
        key=f"no-sign-of-life|household:{unit}",
        rule="no-sign-of-life",
        summary="No sign of life",
        severity=Severity.MAJOR,
        status=AlertStatus.RESOLVED,
        device_id=f"household:{unit}",
        model="community-edge",
        category="household",
        community="c1",
        building="b1",
        unit=unit,
        opened_at=at,
        updated_at=at,
        last_seen_at=at,
        acknowledged_by="li" if acked else None,
        acknowledged_at=at + timedelta(minutes=3) if acked else None,
        resolved_by="li" if acked else "rule",
        resolved_at=at + timedelta(hours=1),
    )


@pytest.mark.parametrize("text", ["2026-13", "26-11", "november", "2026-11-01", "1999-01"])
def test_a_bad_month_is_refused(text: str) -> None:
    with pytest.raises(ReportError):
        parse_month(text)


def test_figures_csv_and_masking() -> None:
    homes = [_home("101"), _home("102", "w2", "李娜")]
    at = datetime(2026, 11, 5, 9, tzinfo=ZONE)
    alerts = [_alert("101", at, True), _alert("102", at, False)]
    report = build_report("c1", 2026, 11, ZONE, homes, [_visit(homes[0], 3)], alerts, NOW)
    assert (report.households, report.visited, report.not_visited) == (2, 1, ("c1/b1/102",))
    assert (report.alerts.raised, report.alerts.followed_up) == (2, 1)
    assert report.alerts.cleared_by_itself == 1
    assert report.alerts.median_ack_s == 180
    assert [i.outcome for i in report.inactivity] == ["resolved", "cleared: sign of life"]
    assert report.alerts_per_day[4] == 2
    text = render_csv(report).decode("utf-8")
    assert "'=HYPERLINK(1)" in text  # a spreadsheet shows it, never runs it
    places = Pseudonyms(b"k" * 32)
    masked = masked_report(report, places)
    assert "102" not in masked.not_visited[0]
    assert masked.not_visited[0].startswith("c1/b1/h-")
    mine = build_report("c1", 2026, 11, ZONE, homes[:1], [], alerts, NOW, homes_only=True)
    assert mine.alerts.raised == 1  # a care worker's report: her households' alerts only


def test_the_pdf_says_which_package_its_font_needs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    report = build_report("c1", 2026, 11, ZONE, [_home("101")], [], [], NOW)
    assert pdf_module.render_pdf(report).startswith(b"%PDF")
    monkeypatch.setattr(pdf_module, "FONT_DIR", tmp_path)
    with pytest.raises(pdf_module.FontMissing, match="apt-get install fonts-noto-cjk"):
        pdf_module.render_pdf(report)


def test_devices_offline_or_low_on_battery_per_household() -> None:
    at = datetime(2026, 11, 9, 9, tzinfo=ZONE)
    offline = _alert("101", at, True).model_copy(
        update={"id": "o1", "rule": "device-offline", "device_id": "pir-101", "category": "motion"}
    )
    battery = _alert("101", at, True).model_copy(
        update={"id": "b1", "rule": "low-battery", "device_id": "wtr-101", "category": "water"}
    )
    report = build_report("c1", 2026, 11, ZONE, [_home("101")], [], [offline, battery], NOW)
    [line] = report.devices
    assert (line.household, line.offline, line.low_battery) == (
        "c1/b1/101",
        ("pir-101",),
        ("wtr-101",),
    )
    assert (report.rows[0].offline, report.rows[0].low_battery) == (1, 1)
    assert list(report.by_category) == ["motion", "water"]
