"""The duty console of a sharded gateway (`run --shards 2`) in a real browser: an SOS handled by
shard 1 appears live on shard 0's board, without a reload (gateway/shard_sync.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
from playwright.sync_api import expect

from edge.enrich import Shard
from gateway.tokens import open_tokens
from tests.agent_process import TOKEN, wait_for
from tests.browser import artefact, chromium, sign_in
from tests.mqtt_publisher import Publisher
from tests.servers import MosquittoFactory
from tests.test_shards import ShardedGateway, _shard_pid, _wait_shard_ready

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
        sign_in(page, TOKEN)
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
        # a household of shard 1 while shard 1 does not answer: her day is said to be unreadable
        home: dict[str, object] = {"community": community, "building": theirs, "unit": "1-101"}
        home |= {"living_alone": True, "residents": [{"name": "张桂英"}]}
        created = httpx.post(f"{agent.url}/v1/households", json=home, headers=agent.headers)
        assert created.status_code == 201, created.text
        # a duty officer reads her day (an admin sees households masked), signed in afresh
        tokens = open_tokens(data)  # shard 0's, as `community-edge tokens create` writes them
        try:
            duty = tokens.create("duty_officer", [community], "duty officer")[1]
        finally:
            tokens.close()
        context.close()
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=agent.url
        )  # on her phone
        context.set_default_timeout(10_000)
        page = context.new_page()
        sign_in(page, duty)
        care = f"/console/care/households/{community}/{theirs}/1-101"
        page.goto(care)
        expect(page.locator("#rhythm-unread")).to_have_count(0)
        pid = _shard_pid(data / "shard-1")
        os.kill(pid, signal.SIGSTOP)
        try:
            page.goto(care, timeout=60_000)
            expect(page.locator("#rhythm-unread")).to_contain_text("shard-1")
            expect(page.locator("#rhythm-unread")).to_contain_text("生活规律暂时读不到")
            page.screenshot(path=artefact("shards-care-rhythm-unread.png"), full_page=True)
            # in English, on a wall screen
            page.set_viewport_size({"width": 1920, "height": 1080})
            page.goto(f"/console/lang?to=en&next={care}", timeout=60_000)
            expect(page.locator("#rhythm-unread")).to_contain_text("Her day cannot be read")
            expect(page.locator("#rhythm-unread")).to_contain_text("shard-1")
            page.screenshot(path=artefact("shards-care-rhythm-unread-en.png"), full_page=True)
        finally:
            os.kill(pid, signal.SIGCONT)
        context.close()
