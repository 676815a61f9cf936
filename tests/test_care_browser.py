"""The care pages in a real browser on a phone (390 px): a care worker sees this month's visits
with the overdue household highlighted, records a visit, and records one an SOS called for.
Against `community-edge run` over a real socket and mosquitto; screenshots in test-artefacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from gateway.tokens import TokenStore
from tests.agent_process import AgentProcess
from tests.browser import artefact, chromium, sign_in
from tests.mqtt_publisher import Publisher
from tests.servers import MosquittoServer
from tests.waiting import wait_until

COMMUNITY = "cs-care"
SOS = b'{"action": "emergency", "battery": 80}'
WORKERS = {"wang-fang": "王芳", "li-hua": "李华"}


def _household(unit: str, worker: str, name: str) -> dict[str, Any]:
    return {
        "community": COMMUNITY,
        "building": "b1",
        "floor": "1",
        "unit": unit,
        "residents": [{"name": name, "phone": "13812345678", "birth_year": 1940}],
        "living_alone": True,
        "care_level": "partial",
        "device_ids": [f"sos-{unit}"],
        "family": [{"name": "李明", "relation": "儿子", "phone": "13900001111"}],
        "care_worker": {"person_id": worker, "name": WORKERS[worker], "phone": "13700003333"},
    }


@dataclass
class _Care:
    agent: AgentProcess
    browser: Browser
    tokens: TokenStore
    publisher: Publisher
    worker_token: str

    def phone(self, lang: str = "zh-CN") -> BrowserContext:
        context = self.browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale=lang,
            base_url=self.agent.url,
        )
        context.set_default_timeout(10_000)
        return context


@pytest.fixture(scope="module")
def care(tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer) -> Iterator[_Care]:
    data = tmp_path_factory.mktemp("care") / "agent"
    with AgentProcess(data, mosquitto.url) as agent, chromium() as browser:
        tokens = TokenStore(data / "tokens.db")
        _, manager = tokens.create("property_manager", [COMMUNITY], name="物业")
        _, worker = tokens.create("care_worker", [COMMUNITY], name="王芳", person="wang-fang")
        headers = {"Authorization": f"Bearer {manager}"}
        for body in (
            _household("1-101", "wang-fang", "张桂英"),
            _household("1-102", "wang-fang", "刘秀兰"),
            _household("1-103", "li-hua", "陈淑珍"),
        ):
            response = httpx.post(f"{agent.url}/v1/households", json=body, headers=headers)
            assert response.status_code == 201, response.text
        # 1-102 was visited ten days ago (due this month, not overdue); 1-101 never (overdue)
        earlier = {"at": (datetime.now(UTC) - timedelta(days=10)).isoformat(), "condition": "good"}
        visited = httpx.post(
            f"{agent.url}/v1/households/{COMMUNITY}/b1/1-102/visits", json=earlier, headers=headers
        )
        assert visited.status_code == 201, visited.text
        with Publisher(mosquitto.url) as publisher:
            yield _Care(agent, browser, tokens, publisher, worker)
        tokens.close()


def _fits(page: Page) -> None:
    """Nothing wider than the phone: no sideways scrolling."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px phone"


def test_a_care_worker_records_a_visit_on_her_phone(care: _Care) -> None:
    with care.phone() as context:
        page = context.new_page()
        sign_in(page, care.worker_token, "/console/care")
        # this month: hers only, overdue first and highlighted, by text and shape as well
        expect(page.locator("#tally-overdue")).to_contain_text("逾期 1")
        expect(page.locator("#tally-due")).to_contain_text("待探访 1")
        cards = page.locator(".households li")
        expect(cards).to_have_count(2)
        expect(cards.nth(0)).to_have_class("hh vs-overdue")
        expect(cards.nth(0)).to_contain_text("张桂英")
        expect(cards.nth(0)).to_contain_text("▲逾期")
        expect(page.locator(".households")).not_to_contain_text("陈淑珍")  # li-hua's
        _fits(page)
        page.screenshot(path=artefact("care-home-390.png"), full_page=True)

        cards.nth(0).locator("a").click()
        page.wait_for_url("**/households/cs-care/b1/1-101")
        expect(page.locator("a[href='tel:13900001111']")).to_be_visible()  # the son, one tap
        expect(page.locator("#visit-status")).to_contain_text("逾期")
        page.click("#record-visit")
        page.wait_for_url("**/1-101/visit")
        page.check("input[name=condition][value=poor]")
        page.fill("#note", "精神尚可、膝盖疼、需陪同复诊")
        page.check("#follow_up")
        _fits(page)
        page.screenshot(path=artefact("care-visit-form-390.png"), full_page=True)
        page.click("#save-visit")
        page.wait_for_url("**/households/cs-care/b1/1-101?done=visit")
        expect(page.locator("#message")).to_have_text("探访已记录。")
        expect(page.locator("#visit-status")).to_contain_text("本月已探访")
        first = page.locator("#visits li").first
        expect(first).to_contain_text("王芳")
        expect(first).to_contain_text("较差")
        expect(first).to_contain_text("需跟进")
        expect(first).to_contain_text("精神尚可、膝盖疼、需陪同复诊")
        _fits(page)
        page.screenshot(path=artefact("care-household-390.png"), full_page=True)

        page.goto("/console/care")
        expect(page.locator("#tally-overdue")).to_contain_text("逾期 0")
        expect(page.locator("#tally-visited")).to_contain_text("本月已探访 1")

        # the duty board is not hers: she is sent to her own pages
        page.goto("/console/")
        page.wait_for_url("**/console/care")


def test_a_visit_an_sos_called_for_is_linked_to_the_alert(care: _Care) -> None:
    care.publisher.publish(f"ce/{COMMUNITY}/b1/tuya-sos-button/sos-1-102", SOS)

    def alert_id() -> str | None:
        items = care.agent.get("/v1/alerts", community=COMMUNITY)["items"]
        return next((a["id"] for a in items if a["device_id"] == "sos-1-102"), None)

    alert = wait_until(alert_id, what="the SOS alert of 1-102")
    assert alert is not None
    with care.phone(lang="en-US") as context:
        page = context.new_page()
        sign_in(page, care.worker_token, "/console/care/households/cs-care/b1/1-102")
        expect(page.locator(".hh-alerts")).to_contain_text("Critical")
        page.click(".visit-alert")
        page.wait_for_url(f"**/1-102/visit?alert={alert}")
        expect(page.locator("#alert-id")).to_have_text(alert)
        page.check("input[name=condition][value=good]")
        page.fill("#note", "False press; she is well.")
        page.click("#save-visit")
        page.wait_for_url("**/1-102?done=visit")
        expect(page.locator("#visits li").first).to_contain_text(alert)
        expect(page.locator("#message")).to_have_text("Visit recorded.")
        _fits(page)
        page.screenshot(path=artefact("care-household-alert-visit-390-en.png"), full_page=True)
    visits = care.agent.get(f"/v1/households/{COMMUNITY}/b1/1-102/visits")["items"]
    assert visits[0]["alert_id"] == alert


def test_the_visit_form_refuses_a_missing_condition_and_keeps_what_was_typed(
    care: _Care,
) -> None:
    with care.phone() as context:
        page = context.new_page()
        sign_in(page, care.worker_token, "/console/care/households/cs-care/b1/1-101/visit")
        page.fill("#note", "敲门无人应答")
        # the browser's own check is skipped here to reach the server's
        page.evaluate(
            "() => document.querySelectorAll('[required]').forEach(e => e.removeAttribute('required'))"
        )
        page.click("#save-visit")
        expect(page.locator("#problem")).to_have_text("请选择老人状况。")
        expect(page.locator("#note")).to_have_value("敲门无人应答")
        # another worker's household is not found, as one that does not exist
        response = page.goto("/console/care/households/cs-care/b1/1-103")
        assert response is not None
        assert response.status == 404


def test_a_duty_officer_records_a_visit_from_the_alert_page(care: _Care) -> None:
    care.publisher.publish(f"ce/{COMMUNITY}/b1/tuya-sos-button/sos-1-101", SOS)

    def alert_id() -> str | None:
        items = care.agent.get("/v1/alerts", community=COMMUNITY)["items"]
        return next((a["id"] for a in items if a["device_id"] == "sos-1-101"), None)

    alert = wait_until(alert_id, what="the SOS alert of 1-101")
    assert alert is not None
    _, duty = care.tokens.create("duty_officer", [COMMUNITY], name="李值班")
    with care.phone() as context:
        page = context.new_page()
        sign_in(page, duty, f"/console/alerts/{alert}")
        page.click("#record-visit")
        page.wait_for_url(f"**/1-101/visit?alert={alert}")
        page.check("input[name=condition][value=fair]")
        page.click("#save-visit")
        page.wait_for_url("**/1-101?done=visit")
        first = page.locator("#visits li").first
        expect(first).to_contain_text("李值班")
        expect(first).to_contain_text(alert)


def test_the_care_pages_at_1920_for_a_property_manager(care: _Care) -> None:
    _, manager = care.tokens.create("property_manager", [COMMUNITY], name="物业经理")
    context = care.browser.new_context(
        viewport={"width": 1920, "height": 1080}, locale="zh-CN", base_url=care.agent.url
    )
    with context:
        page = context.new_page()
        sign_in(page, manager, "/console/care")
        # every care worker's households, and a filter by worker
        expect(page.locator(".households li")).to_have_count(3)
        expect(page.locator(".households")).to_contain_text("陈淑珍")
        expect(page.locator("select[name=worker] option")).to_have_text(
            ["全部网格员", "李华", "王芳"]
        )
        page.screenshot(path=artefact("care-home-1920.png"), full_page=True)
        page.select_option("select[name=worker]", "li-hua")
        page.click(".filters button")
        page.wait_for_url("**/console/care?worker=li-hua")
        expect(page.locator(".households li")).to_have_count(1)


def test_a_care_worker_marks_a_hospital_stay_and_the_return(care: _Care) -> None:
    with care.phone() as context:
        page = context.new_page()
        sign_in(page, care.worker_token, "/console/care/households/cs-care/b1/1-102")
        expect(page.locator("#away")).to_have_text("在家")
        page.click(".away-form summary")
        last_day = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=3)).date()
        page.fill("#until", last_day.isoformat())
        page.fill("#reason", "住院")
        page.click("#save-away")
        page.wait_for_url("**/1-102?done=away")
        back_on = f"{last_day + timedelta(days=1)} 00:00"
        expect(page.locator("#away")).to_have_text(f"外出至 {back_on} · 住院")
        _fits(page)
        page.screenshot(path=artefact("care-household-away-390.png"), full_page=True)
        page.click(".away-form summary")
        page.click("#back-home")
        page.wait_for_url("**/1-102?done=away")
        expect(page.locator("#away")).to_have_text("在家")
