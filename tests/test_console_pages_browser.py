"""The console's pages beyond the board in a real browser (Debian's chromium through Playwright)
against `community-edge run` with a device registry, over a real mosquitto: the alert page's
readings chart and rule trace, a silence made from it and ended, an incident closed with a
summary, the devices pages, and the building board turning a unit red live on a 1920 px wall
and fitting a 390 px phone. Screenshots go to test-artefacts/.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from gateway.console.catalogue import WORDS
from gateway.tokens import TokenStore
from tests.agent_process import AgentProcess
from tests.browser import artefact, chromium, sign_in
from tests.mqtt_publisher import Publisher
from tests.servers import MosquittoServer
from tests.waiting import wait_until

ZH, EN = WORDS["zh"], WORDS["en"]
COMMUNITY = "cp"


def _registry(path: Path) -> Path:
    """Two buildings of SOS buttons by unit, a smoke detector on each floor's landing."""
    rows = ["device_id,model,community,building,unit"]
    for building, floors in (("b1", 6), ("b2", 3)):
        for floor in range(1, floors + 1):
            for n in range(1, 5):
                unit = f"{floor}{n:02d}"
                rows.append(f"sos-{building}-{unit},tuya-sos-button,{COMMUNITY},{building},{unit}")
            rows.append(f"smk-{building}-f{floor},zigbee-ias-smoke,{COMMUNITY},{building},")
    rows.append("sos-x-101,tuya-sos-button,other,x1,101")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@dataclass
class _Live:
    agent: AgentProcess
    browser: Browser
    tokens: TokenStore
    publisher: Publisher

    def token(self, role: str, name: str, community: str = COMMUNITY) -> str:
        return self.tokens.create(role, [community], name=name)[1]

    def context(self, width: int = 1920, height: int = 1080, lang: str = "zh-CN") -> BrowserContext:
        context = self.browser.new_context(
            viewport={"width": width, "height": height}, locale=lang, base_url=self.agent.url
        )
        context.set_default_timeout(10_000)
        return context

    def send(self, device: str, payload: bytes) -> None:
        """A message of one of the community's buttons (`sos-<building>-<unit>`)."""
        building = device.split("-")[1]
        self.publisher.publish(f"ce/{COMMUNITY}/{building}/tuya-sos-button/{device}", payload)

    def alert_of(self, device: str, community: str = COMMUNITY) -> str:
        def found() -> str | None:
            items = self.agent.get("/v1/alerts", community=community)["items"]
            return next((a["id"] for a in items if a["device_id"] == device), None)

        alert_id = wait_until(found, what=f"the alert of {device}")
        assert alert_id is not None
        return alert_id

    def press(self, device: str) -> str:
        """Two routine check-ins (two and one minutes ago, by the device's clock), then an SOS
        press; the alert's id once it is stored."""
        now_ms = int(time.time() * 1000)
        for battery, ago_s in ((91, 120), (90, 60)):
            ts = now_ms - ago_s * 1000
            self.send(device, b'{"battery": %d, "linkquality": 120, "ts": %d}' % (battery, ts))
        self.send(device, b'{"action": "emergency", "battery": 89, "ts": %d}' % now_ms)
        alert_id = self.alert_of(device)
        # the reading store writes up to 0.1 s after the broker's ack
        wait_until(
            lambda: len(self.agent.get("/v1/readings", device_id=device)["items"]) >= 3,
            what=f"the readings of {device}",
        )
        return alert_id

    def press_other(self) -> str:
        """An SOS in another community; its incident's id."""
        self.publisher.publish("ce/other/x1/tuya-sos-button/sos-x-101", b'{"action": "sos"}')
        alert_id = self.alert_of("sos-x-101", "other")
        return str(self.agent.get(f"/v1/alerts/{alert_id}")["alert"]["incident_id"])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer) -> Iterator[_Live]:
    root = tmp_path_factory.mktemp("console-pages")
    registry = _registry(root / "devices.csv")
    data = root / "agent"
    with (
        AgentProcess(data, mosquitto.url, ["--devices", str(registry)]) as agent,
        chromium() as browser,
    ):
        tokens = TokenStore(data / "tokens.db")
        with Publisher(mosquitto.url) as publisher:
            yield _Live(agent, browser, tokens, publisher)
        tokens.close()


def _fits(page: Page, width: int) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def test_the_alert_page_draws_the_readings_and_says_why_it_fired(live: _Live) -> None:
    alert_id = live.press("sos-b1-101")
    token = live.token("duty_officer", "王值班")
    with live.context() as context:
        page = context.new_page()
        sign_in(page, token, f"/console/alerts/{alert_id}")
        expect(page.locator("h1")).to_contain_text("紧急按钮被按下")  # the Chinese summary
        expect(page.locator("#rule-when")).to_have_text("action = emergency")
        expect(page.locator("#checks .check-held")).to_contain_text(ZH["check_held"])
        chart = page.locator("figure[data-field='battery'] svg.chart")
        expect(chart).to_be_visible()
        assert chart.locator("circle").count() == 3  # two check-ins and the press
        assert chart.locator("line.mark").count() == 1  # the alert's moment
        page.locator("#readings").scroll_into_view_if_needed()
        page.screenshot(path=artefact("alert-readings-1920.png"), full_page=True)
        page.click("a[hreflang=en]")
        expect(page.locator("#why")).to_have_text(EN["why"])
        expect(page.locator("h1")).to_contain_text("Emergency button pressed")
        page.click("a[hreflang=zh]")
    with live.context(width=390, height=844) as phone:
        page = phone.new_page()
        sign_in(page, token, f"/console/alerts/{alert_id}")
        expect(page.locator("figure[data-field='battery'] svg.chart")).to_be_visible()
        _fits(page, 390)
        page.screenshot(path=artefact("alert-readings-390.png"), full_page=True)


def test_a_silence_made_from_an_alert_is_listed_and_ended(live: _Live) -> None:
    alert_id = live.press("sos-b1-102")
    duty = live.token("duty_officer", "李维修")
    with live.context() as context:
        page = context.new_page()
        sign_in(page, duty, f"/console/alerts/{alert_id}")
        page.select_option("#silence-hours", "2")
        page.fill("#silence-reason", "更换电池")
        page.click("#silence")
        page.wait_for_url("**/console/silences?created=*")
        expect(page.locator("#message")).to_contain_text("已屏蔽")
        row = page.locator("tr[data-device='sos-b1-102']")
        expect(row).to_contain_text("更换电池")
        expect(row).to_contain_text("李维修")
        page.screenshot(path=artefact("silences-1920.png"), full_page=True)
        # the keyboard reaches the button that ends it
        row.locator("button.expire").focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**/console/silences?done=expire")
        expect(page.locator("#message")).to_have_text(ZH["silence_expired"])
        expect(page.locator("tr[data-device='sos-b1-102']")).to_have_count(0)
    with live.context(width=390, height=844) as phone:
        page = phone.new_page()
        sign_in(page, duty, "/console/silences?all=1")
        expect(page.locator("tr[data-device='sos-b1-102']")).to_contain_text(ZH["expired"])
        _fits(page, 390)
        page.screenshot(path=artefact("silences-390.png"), full_page=True)
    platform = live.token("platform", "区平台")
    with live.context() as context:
        page = context.new_page()
        sign_in(page, platform, f"/console/alerts/{alert_id}")
        assert page.locator("#silence-form").count() == 0
        status = page.evaluate(
            """async (id) => (await fetch('/console/silences', {method: 'POST',
                body: new URLSearchParams({alert: id, hours: '2', reason: 'x'})})).status""",
            alert_id,
        )
        assert status == 403  # no CSRF token (and a read-only role besides)


def test_an_incident_is_handled_end_to_end(live: _Live) -> None:
    alert_id = live.press("sos-b2-201")
    incident_id = live.agent.get(f"/v1/alerts/{alert_id}")["alert"]["incident_id"]
    token = live.token("duty_officer", "张主管")
    with live.context() as context:
        page = context.new_page()
        sign_in(page, token, "/console/incidents")
        page.click(f"tr[data-incident='{incident_id}'] a")
        page.wait_for_url(f"**/console/incidents/{incident_id}")
        expect(page.locator("#members")).to_contain_text("紧急按钮被按下")
        page.click("#ack-incident")
        expect(page.locator("#message")).to_contain_text("已完成")
        # the whole incident to one person: each of its open alerts is assigned
        page.fill("#incident-assignee-input", "李师傅")
        page.click("#assign-incident")
        expect(page.locator("#message")).to_contain_text(ZH["assign_incident"])
        expect(page.locator("#incident-assignee")).to_have_text("李师傅")
        expect(page.locator("#members .assignee")).to_have_text(["李师傅"])
        expect(page.locator("#trail")).to_contain_text(f"{ZH['ev_assigned']} · 张主管 → 李师傅")
        assert live.agent.get(f"/v1/alerts/{alert_id}")["alert"]["assignee"] == "李师傅"
        page.select_option("#outcome", "false_alarm")
        page.fill("#close-note", "老人误按 已上门确认")
        page.screenshot(path=artefact("incident-1920.png"), full_page=True)
        page.click("#close-incident")
        expect(page.locator("#incident-status")).to_have_text(ZH["st_resolved"])
        expect(page.locator("#trail")).to_contain_text("[false_alarm] 老人误按 已上门确认")
        expect(page.locator("#trail")).to_contain_text("张主管")
        assert live.agent.get(f"/v1/alerts/{alert_id}")["alert"]["status"] == "resolved"
        other = live.press_other()
        response = page.goto(f"/console/incidents/{other}")
        assert response is not None
        assert response.status == 404
    with live.context(width=390, height=844) as phone:
        page = phone.new_page()
        sign_in(page, token, f"/console/incidents/{incident_id}")
        expect(page.locator("#trail")).to_contain_text("张主管")
        _fits(page, 390)
        page.screenshot(path=artefact("incident-390.png"), full_page=True)
        page.goto("/console/incidents?all=1")
        expect(page.locator(f"tr[data-incident='{incident_id}']")).to_be_visible()
        _fits(page, 390)


def test_devices_show_their_status_and_a_device_its_chart(live: _Live) -> None:
    live.press("sos-b2-302")
    live.send("sos-b2-303", b'{"battery": 12}')  # low battery
    token = live.token("duty_officer", "设备员")
    with live.context() as context:
        page = context.new_page()
        sign_in(page, token, "/console/devices")
        expect(page.locator("tr[data-device='sos-b2-302']")).to_contain_text(ZH["dev_alarm"])
        expect(page.locator("tr[data-device='sos-b2-303']")).to_contain_text(ZH["dev_low_battery"])
        expect(page.locator("tr[data-device='sos-b2-303']")).to_contain_text(ZH["dev_online"])
        assert page.locator("tr[data-device='sos-x-101']").count() == 0  # another community
        page.screenshot(path=artefact("devices-1920.png"), full_page=True)
        page.select_option("select[name=flag]", "low_battery")
        page.click("form.filters button[type=submit]")
        expect(page.locator("#devices tbody tr")).to_have_count(1)
        page.click("a[href='/console/devices/sos-b2-303']")
        expect(page.locator("figure[data-field='battery'] svg.chart")).to_be_visible()
        response = page.goto("/console/devices/sos-x-101")
        assert response is not None
        assert response.status == 404
    with live.context(width=390, height=844) as phone:
        page = phone.new_page()
        sign_in(page, token, "/console/devices/sos-b2-302")
        expect(page.locator("#device-alerts")).to_contain_text("紧急按钮被按下")
        _fits(page, 390)
        page.screenshot(path=artefact("device-390.png"), full_page=True)


def test_the_building_board_turns_a_unit_red_live_on_the_wall(live: _Live) -> None:
    token = live.token("duty_officer", "大屏")
    for number in ("401", "402", "403"):
        live.send(f"sos-b1-{number}", b'{"battery": 80}')
    with live.context() as context:
        page = context.new_page()
        sign_in(page, token, "/console/buildings")
        expect(page.locator("#link-state")).to_have_text(ZH["live"])  # the stream is open
        unit = page.locator("section[data-building='b1'] li[data-unit='604']")
        expect(unit).to_have_attribute("data-state", "ok")
        live.press("sos-b1-604")  # no reload: the stream redraws the board
        expect(unit).to_have_attribute("data-state", "alarm", timeout=2_000)
        # the radio gateway lost a device: offline at once (its offline alert redraws the board)
        live.publisher.publish(
            f"ce/{COMMUNITY}/b1/tuya-sos-button/sos-b1-503/availability", b'{"state": "offline"}'
        )
        gone = page.locator("section[data-building='b1'] li[data-unit='503']")
        expect(gone).to_have_attribute("data-state", "offline", timeout=2_000)
        expect(gone).to_contain_text(ZH["state_offline"])
        expect(unit).to_contain_text(ZH["state_alarm"])  # told by text, not colour alone
        expect(page.locator("section[data-building='b1']")).to_have_attribute("data-state", "alarm")
        floors = page.eval_on_selector_all(
            "section[data-building='b1'] .floor[data-floor]", "fs => fs.map(f => f.dataset.floor)"
        )
        assert floors[:6] == ["6", "5", "4", "3", "2", "1"]  # top floor first
        _fits(page, 1920)
        page.screenshot(path=artefact("buildings-1920.png"), full_page=True)
        page.click("a[hreflang=en]")
        expect(page.locator(".legend")).to_contain_text(EN["state_offline"])
        expect(unit).to_contain_text(EN["state_alarm"])
        page.screenshot(path=artefact("buildings-1920-en.png"), full_page=True)
        unit.locator("a").click()  # a red unit opens its alert
        page.wait_for_url("**/console/alerts/*")
    with live.context(width=390, height=844) as phone:
        page = phone.new_page()
        sign_in(page, token, "/console/buildings")
        expect(page.locator("section[data-building='b1']")).to_be_visible()
        _fits(page, 390)
        page.screenshot(path=artefact("buildings-390.png"), full_page=True)


def _labels(page: Page, table: str) -> list[str]:
    """What a card shows before each value of its first row (the cells' ::before), once the
    first row's cells all show one (a live board may swap its rows in while we look)."""

    def read() -> list[str]:
        labels: list[str] = page.eval_on_selector_all(
            f"{table} tbody tr:first-child td",
            "tds => tds.map(td => getComputedStyle(td, '::before').content.replace(/^\"|\"$/g, ''))",
        )
        return labels

    return wait_until(
        lambda: labels if (labels := read()) and all(labels) else [],
        timeout=10,
        what=f"a label before every value of {table}'s first card",
    )


def test_tables_on_a_phone_are_cards_with_their_column_names(live: _Live) -> None:
    live.press("sos-b1-301")
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    made = live.agent.post(
        "/v1/silences",
        {"community": COMMUNITY, "device_id": "sos-b2-202", "ends_at": ends, "reason": "换电池"},
    )
    assert made.status_code == 201, made.text
    token = live.token("duty_officer", "巡逻")
    with live.context(width=390, height=844) as phone:
        page = phone.new_page()
        sign_in(page, token, "/console/")
        expect(page.locator("#board tbody tr").first).to_be_visible()
        assert _labels(page, "#board table.alerts") == [
            ZH["severity"],
            ZH["status"],
            ZH["summary"],
            ZH["place"],
            ZH["device"],
            ZH["opened"],
        ]
        _fits(page, 390)
        page.screenshot(path=artefact("board-cards-390.png"), full_page=True)
        for path, table, first in (
            ("/console/devices", "#devices", ZH["device"]),
            ("/console/incidents", "#incidents", ZH["severity"]),
            ("/console/silences", "#silences", ZH["matches"]),
        ):
            page.goto(path)
            labels = _labels(page, table)
            assert labels[0] == first, (path, labels)
            assert all(labels), (path, labels)
            _fits(page, 390)
            name = path.rsplit("/", 1)[-1]
            page.screenshot(path=artefact(f"{name}-cards-390.png"), full_page=True)
        page.click("a[hreflang=en]")
        expect(page.locator("html")).to_have_attribute("lang", "en")  # the English page is in
        expect(page.locator("#silences tbody tr").first).to_be_visible()
        assert _labels(page, "#silences")[0] == EN["matches"]
    with live.context(width=1920, height=1080) as wall:
        page = wall.new_page()
        sign_in(page, token, "/console/devices")
        assert set(_labels(page, "#devices")) == {"none"}  # a wide table has its header instead
