"""`community-edge demo` in a real chromium: the printed one-time link signs the demo's duty officer
straight in, the board fills with alerts from different registered homes, an alert page names its
place; the link works once. The screenshots (test-artefacts/demo-*.png) are the README's.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import expect

from gateway.console.catalogue import WORDS
from tests.agent_process import wait_for
from tests.browser import artefact, chromium


def test_the_demo_prints_a_sign_in_link_and_plays_homes_on_the_board(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [
                *(sys.executable, "-m", "gateway.cli", "demo", "--api-port", "0"),
                *("--data-dir", str(tmp_path / "data"), "--rate", "40"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        banner = wait_for(
            lambda: re.search(
                r"sign in:\s+(http://\S+/console/sign-in/link\?code=\S+)", log.read_text()
            ),
            what="the sign-in link in the demo's banner",
        )
        link = banner.group(1)
        platform_link = re.search(r"read only:\s+(http://\S+)", log.read_text())
        assert platform_link is not None
        base = link.split("/console/")[0]
        with chromium() as browser:
            context = browser.new_context(viewport={"width": 1280, "height": 720}, locale="zh-CN")
            context.set_default_timeout(15_000)
            page = context.new_page()
            page.goto(link)
            page.wait_for_url(f"{base}/console/")
            expect(page.locator(".who")).to_contain_text("王芳")
            expect(page.locator("#link-state")).to_have_text("实时")
            # scenarios rotate through homes: three alerts, three different places, no reload
            rows = page.locator("#board tr[data-device]")
            wait_for(lambda: rows.count() >= 3, within_s=60, what="three alerts on the board")
            places = {rows.nth(i).locator("td").nth(3).inner_text() for i in range(rows.count())}
            assert len(places) >= 3, places
            page.screenshot(path=artefact("demo-board.png"))

            sos = page.locator('#board tr[data-device^="sos-"] a').first
            sos.click()
            expect(page.locator("#alert")).to_contain_text("sunshine-garden")
            # registered: the place names the unit, shown to a duty officer
            expect(page.locator("#alert dl.facts").first).to_contain_text(
                re.compile(r"b0\d · \d{3}")
            )
            expect(page.locator("#ack")).to_be_visible()
            page.screenshot(path=artefact("demo-alert.png"), full_page=True)

            # the district platform's link: the same alerts, homes masked, no actions
            district = browser.new_context(viewport={"width": 1280, "height": 720}, locale="zh-CN")
            view = district.new_page()
            view.goto(platform_link.group(1))
            view.wait_for_url(f"{base}/console/")
            expect(view.locator(".who")).to_contain_text("区平台")
            sos_row = view.locator('#board tr[data-device^="sos-"]').first
            expect(sos_row).to_be_visible()
            assert re.search(r"· \d{3}\b", sos_row.inner_text()) is None  # no flat number
            sos_row.locator("a").click()
            expect(view.locator("#alert dl.facts").first).to_contain_text(WORDS["zh"]["masked"])
            expect(view.locator("#read-only")).to_be_visible()
            view.screenshot(path=artefact("demo-alert-platform.png"), full_page=True)
            district.close()

            # the link is spent: a second browser gets the message, not a session
            other = browser.new_context(locale="zh-CN")
            again = other.new_page()
            response = again.goto(link)
            assert response is not None
            assert response.status == 410
            expect(again.locator("main")).to_contain_text(WORDS["zh"]["link_spent"])
            other.close()
            context.close()
    finally:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0, log.read_text()[-2000:]
    text = log.read_text()
    assert re.search(r"demo: elder-sos at b0\d / \dF / \d{3}", text), text[-2000:]
    # routine traffic is not a warning: nothing of ours logs at WARNING during the demo
    ours = [ln for ln in text.splitlines() if re.search(r"WARNING (edge|gateway|simulators)", ln)]
    assert ours == []
