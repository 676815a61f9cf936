"""An SMS's link and a call's key press for the same alarm, through `community-edge run`, the
local Alibaba SMS and Tencent voice receivers and a real Chromium (tests/browser.py).

The agent restarts between the SMS and the call's key press: the key press still acknowledges
the right alert as the person called; the person who meanwhile opened the SMS link and stayed on
its confirmation page is told who took it when pressing its button; a link preview of the other
alarm's SMS acknowledges nothing; a replayed link changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.agent_process import wait_for
from tests.browser import artefact, chromium
from tests.phone_agent import (
    CALLBACK_TOKEN,
    alert_of,
    phone_agent,
    press_sos_button,
    request_number,
)
from tests.phone_receivers import ProviderReceiver
from tests.servers import MosquittoServer


def test_a_key_press_after_a_restart_takes_the_right_alert_and_the_sms_page_says_who(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    with (
        ProviderReceiver("aliyun", "sms") as sms,
        ProviderReceiver("tencent", "voice") as voice,
    ):
        agent = phone_agent(tmp_path, mosquitto, (sms, "sms"), (voice, "call"))
        with agent:
            press_sos_button(mosquitto, "phlinks", "sos-p1")
            first_sms, _ = request_number(sms, 1), request_number(voice, 1)
            press_sos_button(mosquitto, "phlinks", "sos-p2")
            second_sms, second_call = request_number(sms, 2), request_number(voice, 2)
            first = alert_of(agent, "phlinks", "sos-p1")
            second = alert_of(agent, "phlinks", "sos-p2")
        agent.start()  # the same data dir and port: a restarted gateway
        try:
            # a chat app or SMS client previewing the first alarm's link: GETs, redirects
            preview = httpx.get(first_sms.fields["link"], follow_redirects=True, timeout=10)
            assert preview.status_code == 200
            with chromium() as browser:
                page = browser.new_context(
                    viewport={"width": 390, "height": 800}, locale="zh-CN"
                ).new_page()
                page.goto(second_sms.fields["link"])  # 李伟 opens the SMS link and hesitates
                assert page.get_by_role("button").is_visible()
                assert "李伟" in page.content()
                page.screenshot(path=str(artefact("sms-link-confirm-390.png")), full_page=True)
                action = page.locator("form").get_attribute("action")  # replayed below
                # ... while the call rings and is answered with 1 (after the restart)
                pressed = voice.press(agent.url, CALLBACK_TOKEN, second_call)
                assert pressed.json() == {"result": 0, "errmsg": "OK"}
                taken = wait_for(
                    lambda: (
                        (a := agent.get(f"/v1/alerts/{second['id']}")["alert"])["status"]
                        == "acknowledged"
                        and a
                    ),
                    10,
                    "the key press acknowledging the second alert",
                )
                assert taken["acknowledged_by"] == "李伟"
                page.get_by_role("button").click()
                page.wait_for_selector("text=已有人处理")
                page.screenshot(path=str(artefact("sms-link-late-390.png")), full_page=True)
            assert action is not None
            replay = httpx.post(httpx.URL(agent.url).join(action), timeout=10)
            assert replay.status_code == 409
            history = agent.get(f"/v1/alerts/{second['id']}")["history"]
            assert [e["kind"] for e in history] == ["opened", "acknowledged"]
            # the first alarm: previewed, never pressed, still open; nobody phoned twice
            assert agent.get(f"/v1/alerts/{first['id']}")["alert"]["status"] == "active"
            assert (len(sms.requests), len(voice.requests)) == (2, 2)
        finally:
            agent.stop()
