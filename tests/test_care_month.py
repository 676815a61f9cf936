"""#18: a community of 200 living-alone households over November on a virtual clock, through the
agent's pipeline with the shipped rules: normal rhythms raise nothing; one fall is found by the
sign-of-life rules (no sign, then the water idle); one hospital stay marked away raises nothing;
two households are not visited. The month's report shows exactly those, as figures, as CSV, as a
PDF (its text and pages read back with poppler, its first page rendered to PNG), and as the
console page in Chromium against `community-edge run` over the same data directory.
"""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from edge.alerts import AlertStore
from edge.enrich import HouseholdStore, VisitStore
from gateway.reports import CareReport, build_report, month_alerts
from gateway.reports.csv_file import render_csv
from gateway.reports.pdf import render_pdf
from gateway.tokens import TokenStore
from tests.agent_process import AgentProcess
from tests.browser import artefact, chromium
from tests.care_world import COMMUNITY, ZONE, CareWorld, Story
from tests.servers import MosquittoServer

MONTH_END = datetime(2026, 12, 1, tzinfo=ZONE)


def _poppler(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} is missing: apt-get install -y poppler-utils (scripts/test.sh does)")
    return found


class _Month:
    def __init__(self, data: Path, story: Story, report: CareReport, seconds: float) -> None:
        self.data, self.story, self.report, self.seconds = data, story, report, seconds


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> _Month:
    data = tmp_path_factory.mktemp("care") / "data"
    world = CareWorld(data)
    started = time.perf_counter()
    asyncio.run(world.run_month())
    simulated = time.perf_counter() - started
    households, visits, alerts = (
        HouseholdStore(data / "households.db"),
        VisitStore(data / "visits.db"),
        AlertStore(data / "alerts.db"),
    )
    start, end = datetime(2026, 11, 1, tzinfo=ZONE), MONTH_END
    report = build_report(
        COMMUNITY,
        2026,
        11,
        ZONE,
        households.list([COMMUNITY]),
        visits.list(communities=[COMMUNITY], since=start, until=end, limit=100_000),
        month_alerts(
            lambda c: alerts.list(communities=[COMMUNITY], limit=500, cursor=c), start, end
        ),
        MONTH_END,
    )
    households.close()
    visits.close()
    alerts.close()
    print(
        f"simulated 30 days of {world.households} households ({world.story.messages} messages) in {simulated:.1f} s"
    )
    return _Month(data, world.story, report, simulated)


def test_the_month_raises_only_the_fall(month: _Month) -> None:
    assert month.story.fall_alerts == ["no-sign-of-life", "water-idle"]
    report = month.report
    assert report.alerts.raised == 2
    assert list(report.by_category) == ["household"]
    assert [(line.household, line.rule) for line in report.inactivity] == [
        (month.story.fall, "no-sign-of-life"),
        (month.story.fall, "water-idle"),
    ]
    first, second = report.inactivity
    assert first.condition == "poor"
    assert first.outcome.startswith("resolved: 跌倒送医")
    assert first.ack_s == 8 * 60
    assert first.arrive_s == 38 * 60
    assert second.arrive_s is None
    assert report.alerts.followed_up == 2
    assert report.alerts.follow_up_rate == 1.0
    assert report.devices == ()


def test_the_month_shows_the_missed_visits_and_the_hospital_stay(month: _Month) -> None:
    report = month.report
    assert report.households == 200
    assert report.visited == 198
    assert set(report.not_visited) == set(month.story.missed)
    assert [h for h, _ in report.away] == [month.story.hospital]
    assert "hospital" in report.away[0][1]
    assert sum(w.households for w in report.by_worker) == 200
    assert sum(w.visits for w in report.by_worker) == report.visits == 199  # 198 + the fall's
    fall_worker = next(w for w in report.by_worker if w.alerts.raised)
    assert fall_worker.alerts.raised == 2


def test_the_csv_has_a_row_per_household(month: _Month) -> None:
    text = render_csv(month.report).decode("utf-8")
    assert text.startswith("\ufeff住户")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 201
    by_id = {row[0]: row for row in rows[1:]}
    assert by_id[month.story.fall][5:8] == ["2", "2", "2"]  # raised, followed up, no sign
    assert by_id[month.story.missed[0]][3] == "否 no"
    assert "hospital" in by_id[month.story.hospital][10]


def test_the_pdf_reads_back_in_chinese_with_its_pages(month: _Month) -> None:
    pdf = artefact("care-report-2026-11.pdf")
    started = time.perf_counter()
    pdf.write_bytes(render_pdf(month.report))
    print(
        f"PDF of 200 households: {time.perf_counter() - started:.2f} s, {pdf.stat().st_size} bytes"
    )
    text = subprocess.run(
        [_poppler("pdftotext"), "-layout", str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for expected in (
        "居家养老服务月报",
        "探访覆盖率",
        "99%",
        "198/200",
        "告警跟进率",
        "100%",
        "2/2",
        "无生活迹象告警及结果",
        "跌倒送医",
        "本月未探访住户",
        month.story.fall,
        *month.story.missed,
        month.story.hospital,
        "王芳",
    ):
        assert expected in text, f"{expected!r} not in the PDF's text"
    info = subprocess.run(
        [_poppler("pdfinfo"), str(pdf)], check=True, capture_output=True, text=True
    ).stdout
    pages = int(next(line for line in info.splitlines() if line.startswith("Pages:")).split()[1])
    assert 1 <= pages <= 3
    fonts = subprocess.run(
        [_poppler("pdffonts"), str(pdf)], check=True, capture_output=True, text=True
    ).stdout
    assert "NotoSansCJKSC" in fonts  # embedded (subset): it reads the same on any viewer
    png = artefact("care-report-2026-11")
    subprocess.run(
        [_poppler("pdftoppm"), "-png", "-r", "80", "-f", "1", "-l", "2", str(pdf), str(png)],
        check=True,
    )
    assert Path(f"{png}-1.png").stat().st_size > 20_000


def test_the_report_page_in_chromium(month: _Month, mosquitto: MosquittoServer) -> None:
    # the agent runs on today's clock over November's state: it learned each resident's day
    # the hospital stay is extended past today: the board shows who is away, until when and why
    register = HouseholdStore(month.data / "households.db")
    longer = datetime(2099, 1, 1, tzinfo=ZONE)
    register.set_away(month.story.hospital, longer, "住院 hospital", datetime.now(ZONE))
    register.close()
    tokens = TokenStore(month.data / "tokens.db")
    _, token = tokens.create("duty_officer", [COMMUNITY], name="李值班")
    _, platform = tokens.create("platform", [COMMUNITY], name="区平台")
    _, worker = tokens.create("care_worker", [COMMUNITY], name="李娜", person="li-na")
    tokens.close()
    with AgentProcess(month.data, mosquitto.url) as agent, chromium() as browser:
        for width, lang in ((1920, "zh-CN"), (390, "en-US")):
            context = browser.new_context(
                viewport={"width": width, "height": 1000}, locale=lang, base_url=agent.url
            )
            context.set_default_timeout(15_000)
            page = context.new_page()
            path = f"/console/reports/care?community={COMMUNITY}&month=2026-11"
            page.goto(path)
            page.fill("#token", token)
            page.click("button[type=submit].primary")
            page.wait_for_url("**/console/reports/care*")
            tiles = page.locator("#tile-visits").inner_text()
            assert "99%" in tiles
            assert "198 / 200" in tiles
            assert "100%" in page.locator("#tile-alerts").inner_text()
            rows = page.locator("#inactivity tbody tr")
            assert rows.count() == 2
            assert month.story.fall in rows.first.inner_text()
            missed = page.locator("#not-visited li").all_inner_texts()
            assert sorted(missed) == sorted(month.story.missed)
            page.screenshot(path=str(artefact(f"care-report-{width}.png")), full_page=True)
            if width == 1920:
                page.goto("/console/")
                away = page.locator("#away-now").inner_text()
                assert month.story.hospital in away
                assert "住院" in away
                page.screenshot(path=str(artefact("care-board-away.png")))
                page.goto(path)
            with page.expect_download() as download:
                page.click("a[href^='/console/reports/care.pdf']")
            assert download.value.suggested_filename == "care-report-sunshine-2026-11.pdf"
            context.close()
        # her learned day on the fall household's page: hours of her day, days learned
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, locale="zh-CN", base_url=agent.url
        )
        page = context.new_page()
        community, building, unit = month.story.fall.split("/")
        path = f"/console/care/households/{community}/{building}/{unit}"
        page.goto(path)
        page.fill("#token", token)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"**{path}*")
        rhythm = page.locator("#rhythm").inner_text()
        assert "no-sign-of-life" in rhythm
        assert "water-idle" in rhythm
        assert "日常活动时段" in rhythm  # her usual hours, learned
        page.locator("#rhythm").screenshot(path=str(artefact("care-rhythm.png")))
        context.close()
        # the fall household's care worker reads the report of her 50 households
        context = browser.new_context(locale="zh-CN", base_url=agent.url)
        page = context.new_page()
        page.goto(f"/console/reports/care?community={COMMUNITY}&month=2026-11")
        page.fill("#token", worker)
        page.click("button[type=submit].primary")
        page.wait_for_url("**/console/reports/care*")
        assert "50 / 50" in page.locator("#tile-visits").inner_text()
        assert "2 / 2" in page.locator("#tile-alerts").inner_text()
        assert page.locator("#not-visited li").count() == 0
        context.close()
        # a platform reads the same figures with every household by its pseudonym
        context = browser.new_context(locale="zh-CN", base_url=agent.url)
        page = context.new_page()
        page.goto(f"/console/reports/care?community={COMMUNITY}&month=2026-11")
        page.fill("#token", platform)
        page.click("button[type=submit].primary")
        page.wait_for_url("**/console/reports/care*")
        text = page.locator("main").inner_text()
        assert "198 / 200" in text
        assert month.story.fall not in text
        context.close()
