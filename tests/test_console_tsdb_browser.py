"""Readings around the moment when they go to a time-series server: `community-edge run
--tsdb-url` against a real VictoriaMetrics and mosquitto, in a real browser (Debian's chromium
through Playwright). The alert page and the device page draw their charts from what the agent
wrote there, and the rule's trace is checked against the reading read back; with the server
gone the page says so instead of showing nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from gateway.console.catalogue import WORDS
from gateway.tokens import TokenStore
from tests.agent_process import AgentProcess
from tests.browser import artefact, chromium, sign_in
from tests.mqtt_publisher import Publisher
from tests.servers import MosquittoServer, VictoriaMetricsServer
from tests.waiting import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.tsdb]
ZH = WORDS["zh"]
COMMUNITY = "ts"


def _registry(path: Path) -> Path:
    rows = ["device_id,model,community,building,unit"]
    rows += [f"sos-ts-{u},tuya-sos-button,{COMMUNITY},t1,{u}" for u in ("101", "102")]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _press(agent: AgentProcess, publisher: Publisher, device: str) -> str:
    """Two check-ins (two and one minutes ago) and an SOS press; the alert's id."""
    topic = f"ce/{COMMUNITY}/t1/tuya-sos-button/{device}"
    now_ms = int(time.time() * 1000)
    for battery, ago_s in ((91, 120), (90, 60)):
        publisher.publish(topic, b'{"battery": %d, "ts": %d}' % (battery, now_ms - ago_s * 1000))
    publisher.publish(topic, b'{"action": "emergency", "battery": 89, "ts": %d}' % now_ms)

    def found() -> str | None:
        items = agent.get("/v1/alerts", community=COMMUNITY)["items"]
        return next((a["id"] for a in items if a["device_id"] == device), None)

    alert_id = wait_until(found, what=f"the alert of {device}")
    assert alert_id is not None
    return alert_id


@pytest.fixture(scope="module")
def agent(
    tmp_path_factory: pytest.TempPathFactory,
    mosquitto: MosquittoServer,
    victoria_metrics: VictoriaMetricsServer,
) -> Iterator[AgentProcess]:
    root = tmp_path_factory.mktemp("console-tsdb")
    args = ["--devices", str(_registry(root / "devices.csv")), "--tsdb-url", victoria_metrics.url]
    with AgentProcess(root / "agent", mosquitto.url, args) as running:
        yield running


def test_the_alert_and_device_pages_chart_readings_from_victoria_metrics(
    agent: AgentProcess, mosquitto: MosquittoServer, victoria_metrics: VictoriaMetricsServer
) -> None:
    tokens = TokenStore(agent.data_dir / "tokens.db")
    token = tokens.create("duty_officer", [COMMUNITY], name="王值班")[1]
    tokens.close()
    with Publisher(mosquitto.url) as publisher:
        alert_id = _press(agent, publisher, "sos-ts-101")
    # the agent has written the three readings; VictoriaMetrics searches them once flushed
    wait_until(
        lambda: (
            len(victoria_metrics.export('{__name__="sos_battery",device_id="sos-ts-101"}'))
            and len(
                victoria_metrics.export('{__name__="sos_battery",device_id="sos-ts-101"}')[0].values
            )
            >= 3
        ),
        what="three battery samples in VictoriaMetrics",
    )
    with chromium() as browser:
        context = browser.new_context(
            viewport={"width": 1920, "height": 1080}, locale="zh-CN", base_url=agent.url
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        sign_in(page, token, f"/console/alerts/{alert_id}")
        chart = page.locator("figure[data-field='battery'] svg.chart")
        expect(chart).to_be_visible()
        assert chart.locator("circle").count() == 3  # two check-ins and the press
        assert chart.locator("line.mark").count() == 1  # the alert's moment
        expect(page.locator("#readings-source")).to_have_text(ZH["readings_from_tsdb"])
        assert page.locator("#readings-elsewhere").count() == 0
        # the trace checks `action = emergency` against the flag VictoriaMetrics kept
        expect(page.locator("#checks .check-held")).to_contain_text(ZH["check_held"])
        page.locator("#readings").scroll_into_view_if_needed()
        page.screenshot(path=artefact("alert-readings-tsdb-1920.png"), full_page=True)
        page.goto("/console/devices/sos-ts-101")
        expect(page.locator("figure[data-field='battery'] svg.chart")).to_be_visible()
        page.screenshot(path=artefact("device-tsdb-1920.png"), full_page=True)
        # the server gone: the page says why there is no chart, and still loads
        victoria_metrics.stop()
        try:
            page.goto(f"/console/alerts/{alert_id}")
            expect(page.locator("#readings-down")).to_contain_text(victoria_metrics.url)
            expect(page.locator("h1")).to_contain_text("紧急按钮被按下")
            page.screenshot(path=artefact("alert-readings-tsdb-down.png"), full_page=True)
        finally:
            victoria_metrics.start()
        context.close()
