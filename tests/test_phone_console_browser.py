"""A key press on a call, as the duty console shows it (Debian's chromium, Playwright): the alert
acknowledged in the person's name, the key press and the call's receipt on its delivery record."""

from __future__ import annotations

from pathlib import Path

from tests.agent_process import TOKEN, wait_for
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


def test_the_console_shows_who_pressed_1_and_the_providers_receipts(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    with (
        ProviderReceiver("tencent", "voice") as receiver,
        phone_agent(tmp_path, mosquitto, (receiver, "call-tencent")) as agent,
    ):
        press_sos_button(mosquitto, "consolec", "sos-v1")
        call = request_number(receiver, 1)
        alert = alert_of(agent, "consolec", "sos-v1")
        receiver.press(agent.url, CALLBACK_TOKEN, call)
        receiver.report(agent.url, CALLBACK_TOKEN, call)
        wait_for(
            lambda: len(agent.get(f"/v1/alerts/{alert['id']}")["deliveries"]) >= 4,
            10,
            "the channel's row, the call, the key press and the receipt",
        )
        with chromium() as browser:
            context = browser.new_context(
                viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=agent.url
            )
            page = context.new_page()
            page.goto("/console/")
            page.fill("#token", TOKEN)
            page.click("button[type=submit].primary")
            page.wait_for_url("**/console/*")
            page.goto(f"/console/alerts/{alert['id']}")
            page.wait_for_selector("text=按键 keypad")
            text = page.inner_text("body")
            page.screenshot(path=str(artefact("phone-keypad-ack-390.png")), full_page=True)
    assert "李伟" in text
    assert "电话按键确认" in text
    assert "回执 receipt" in text
    assert "138****5678" in text
    assert "13812345678" not in text
