"""The building board at the size of a large community, in a real browser (Debian's chromium
through Playwright) against `community-edge run` over a real mosquitto: 5,000 registered SOS
buttons (50 buildings x 20 floors x 5 units). An SOS press turns its unit red without a reload
(an alert event redraws only its building, not the whole 750 KB board), and a burst of 30 presses
turns all 30 red. Prints the figures (publish -> unit red p50/max over 10 presses, the board's
size and fetch time); the speed target (red well within 2 s) is a benchmark's, not this test's:
the bounds here are generous waits, which a loaded machine (a parallel run) still meets.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from gateway.console.catalogue import WORDS
from gateway.tokens import TokenStore
from tests.agent_process import AgentProcess
from tests.browser import artefact, chromium, sign_in
from tests.mqtt_publisher import Publisher
from tests.servers import MosquittoServer

pytestmark = pytest.mark.broker
ZH = WORDS["zh"]
COMMUNITY = "big"
BUILDINGS, FLOORS, UNITS = 50, 20, 5
PRESSES = 10
# a generous wait, not the speed target (see the module docstring)
RED_WITHIN_S = 30.0

# stamps the moment (the browser's clock, the same machine's as the test's) a unit turns red
_WATCH = """sel => { window.__red = null; (function poll() {
  const el = document.querySelector(sel);
  if (el && el.dataset.state === 'alarm') { window.__red = Date.now(); }
  else { requestAnimationFrame(poll); } })(); }"""

_WATCH_ALL = """sels => { window.__red = null; (function poll() {
  if (sels.every(s => document.querySelector(s)?.dataset.state === 'alarm')) {
    window.__red = Date.now(); } else { requestAnimationFrame(poll); } })(); }"""


def _registry(path: Path) -> Path:
    rows = ["device_id,model,community,building,unit"]
    for b in range(1, BUILDINGS + 1):
        for floor in range(1, FLOORS + 1):
            for n in range(1, UNITS + 1):
                unit = f"{floor}{n:02d}"
                rows.append(f"sos-{b}-{unit},tuya-sos-button,{COMMUNITY},b{b},{unit}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def agent(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer
) -> Iterator[AgentProcess]:
    root = tmp_path_factory.mktemp("board-scale")
    registry = _registry(root / "devices.csv")
    with AgentProcess(root / "agent", mosquitto.url, ["--devices", str(registry)]) as running:
        yield running


def test_an_sos_turns_its_unit_red_live_among_5000_devices(
    agent: AgentProcess, mosquitto: MosquittoServer
) -> None:
    tokens = TokenStore(agent.data_dir / "tokens.db")
    token = tokens.create("duty_officer", [COMMUNITY], name="大屏")[1]
    tokens.close()
    with chromium() as browser:
        _measure(browser, agent, mosquitto, token)


def _measure(browser: Browser, agent: AgentProcess, mosquitto: MosquittoServer, token: str) -> None:
    context = browser.new_context(
        viewport={"width": 1920, "height": 1080}, locale="zh-CN", base_url=agent.url
    )
    context.set_default_timeout(RED_WITHIN_S * 1000)
    page = context.new_page()
    started = time.perf_counter()
    sign_in(page, token, "/console/buildings", timeout_ms=30_000)
    load_s = time.perf_counter() - started
    expect(page.locator("#link-state")).to_have_text(ZH["live"])
    assert page.locator("li[data-unit]").count() == BUILDINGS * FLOORS * UNITS
    whole = page.evaluate(
        """async () => { const t = performance.now();
        const r = await fetch('/console/buildings/board', {headers: {'HX-Request': 'true'}}); const text = await r.text();
        return [text.length, performance.now() - t]; }"""
    )
    latencies: list[float] = []
    with Publisher(mosquitto.url) as publisher:
        for n in range(PRESSES):
            building, unit = 5 * n + 3, f"{n + 1}{n % UNITS + 1:02d}"
            device = f"sos-{building}-{unit}"
            selector = f"section[data-building='b{building}'] li[data-unit='{unit}']"
            page.evaluate(_WATCH, selector)
            sent = time.time()
            publisher.publish(
                f"ce/{COMMUNITY}/b{building}/tuya-sos-button/{device}", b'{"action": "emergency"}'
            )
            expect(page.locator(selector)).to_have_attribute("data-state", "alarm")
            red = page.wait_for_function("() => window.__red").json_value()
            latencies.append(float(red) / 1000 - sent)
        # a burst: 30 presses in 30 buildings at once, gathered into a few requests
        burst = [(b, "2001") for b in range(1, 31)]  # the top floors: no unit pressed above
        page.evaluate(
            _WATCH_ALL, [f"section[data-building='b{b}'] li[data-unit='{u}']" for b, u in burst]
        )
        sent = time.time()
        publisher.send(
            (f"ce/{COMMUNITY}/b{b}/tuya-sos-button/sos-{b}-{u}", b'{"action": "emergency"}')
            for b, u in burst
        )
        publisher.wait()
        for b, u in burst:
            cell = page.locator(f"section[data-building='b{b}'] li[data-unit='{u}']")
            expect(cell).to_have_attribute("data-state", "alarm")
        burst_s = float(page.wait_for_function("() => window.__red").json_value()) / 1000 - sent
    alarms = page.locator("section[data-building='b3']").get_attribute("data-alarms") or ""
    alert_id = alarms.split()[0]
    part = page.evaluate(
        """async id => { const t = performance.now();
        const r = await fetch('/console/buildings/places?alert=' + id); const text = await r.text();
        return [text.length, performance.now() - t]; }""",
        alert_id,
    )
    names = page.eval_on_selector_all("section.building", "s => s.map(b => b.dataset.building)")
    assert names[:3] == ["b1", "b2", "b3"]  # numbers as numbers: b2 before b10
    page.locator("section[data-building='b3']").scroll_into_view_if_needed()
    page.screenshot(path=artefact("buildings-5000-1920.png"))
    context.close()
    p50, worst = statistics.median(latencies), max(latencies)
    print(
        f"\n5,000 devices: publish -> unit red p50 {p50 * 1000:.0f} ms, max {worst * 1000:.0f} ms "
        f"({PRESSES} presses); board {whole[0] / 1000:.0f} KB fetched in {whole[1]:.0f} ms, "
        f"first load {load_s:.2f} s; one building {part[0] / 1000:.1f} KB in {part[1]:.0f} ms; "
        f"{len(burst)} presses at once all red within {burst_s * 1000:.0f} ms"
    )
    assert worst < RED_WITHIN_S, latencies
    assert burst_s < RED_WITHIN_S
