"""The duty console of a sharded gateway (`run --shards 2`) in a real browser: an SOS handled by
shard 1 appears live on shard 0's board, without a reload (gateway/shard_sync.py)."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import expect

from edge.enrich import Shard
from tests.agent_process import TOKEN, wait_for
from tests.browser import artefact, chromium
from tests.mqtt_publisher import Publisher
from tests.servers import MosquittoFactory
from tests.test_shards import ShardedGateway, _wait_shard_ready

SOS = b'{"action": "emergency", "battery": 80}'


def test_an_sos_of_shard_1_is_live_on_shard_0s_board(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory()
    community = "shard-board"
    theirs = next(f"b{n}" for n in range(100) if Shard(1, 2).owns(community, f"b{n}"))
    data = tmp_path / "data"
    with ShardedGateway(data, broker.url) as agent, chromium() as browser:
        _wait_shard_ready(data / "shard-1")
        context = browser.new_context(
            viewport={"width": 1600, "height": 900}, locale="zh-CN", base_url=agent.url
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.goto("/console/")
        page.fill("#token", TOKEN)
        page.click("button[type=submit].primary")
        page.wait_for_url("**/console/*")
        expect(page.locator("#link-state")).to_have_text("实时")  # the stream is open
        device = f"sos-{theirs}"
        sent = time.monotonic()
        with Publisher(broker.url) as publisher:
            publisher.publish(f"ce/{community}/{theirs}/tuya-sos-button/{device}", SOS)
        row = page.locator(f"#board tr[data-device='{device}']")
        # live: the page was not reloaded; a generous wait, not a speed target (a loaded machine)
        expect(row).to_be_visible(timeout=30_000)
        seen_s = time.monotonic() - sent
        page.screenshot(path=artefact("shards-board-live-sos.png"))
        assert seen_s < 30.0, seen_s
        print(f"shard 1's SOS on shard 0's board after {seen_s:.2f} s")
        # the button's page on shard 0 (once shard 0 knows the device from shard 1's liveness
        # file) reads its readings from shard 1's embedded store
        wait_for(
            lambda: (found := page.goto(f"/console/devices/{device}")) and found.status == 200,
            within_s=30,
            what="shard 1's SOS button's page on shard 0",
        )
        expect(page.locator(".readings-table tbody tr")).to_have_count(1)
        expect(page.locator("#no-readings")).to_have_count(0)
        page.screenshot(path=artefact("shards-device-readings-of-shard-1.png"), full_page=True)
        context.close()
