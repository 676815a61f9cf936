"""Action links in a real browser (Debian's chromium, Playwright) against `community-edge run`: a
person on the confirmation page while a second person acts from another browser sees who did;
a link preview (a plain GET) acknowledges nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from gateway.action_links import ActionLinks, LinkAction
from tests.agent_process import AgentProcess, wait_for
from tests.browser import artefact, chromium
from tests.mqtt_publisher import publish
from tests.servers import MosquittoServer


def _link(agent: AgentProcess, alert_id: str, person: str, name: str) -> str:
    links = ActionLinks(agent.data_dir)
    try:
        token = links.issue(
            alert_id,
            LinkAction.ACKNOWLEDGE,
            person,
            name,
            now=datetime.now(UTC),
            valid_for=timedelta(minutes=15),
        )
    finally:
        links.close()
    return f"{agent.url}/a/{token}"


def test_two_people_one_acknowledgement_and_a_preview_that_does_nothing(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    with AgentProcess(tmp_path / "agent", mosquitto.url) as agent:
        publish(mosquitto.url, [("ce/links/b1/tuya-sos-button/sos-l1", {"action": "emergency"})])
        alert_id: str = wait_for(
            lambda: next(
                (a["id"] for a in agent.get("/v1/alerts", community="links")["items"]), None
            ),
            20,
            "the SOS alert",
        )
        li, wang = (
            _link(agent, alert_id, "li-wei", "李伟"),
            _link(agent, alert_id, "wang-fang", "王芳"),
        )
        # a chat app's preview: a plain GET, as link unfurlers make it
        assert httpx.get(wang, timeout=5).status_code == 200
        with chromium() as browser:
            first = browser.new_context(viewport={"width": 390, "height": 800}, locale="zh-CN")
            second = browser.new_context(viewport={"width": 390, "height": 800}, locale="zh-CN")
            waiting = first.new_page()
            waiting.goto(wang)  # Wang opens the page and hesitates
            assert waiting.get_by_role("button").is_visible()
            assert agent.get(f"/v1/alerts/{alert_id}")["alert"]["status"] == "active"
            acting = second.new_page()
            acting.goto(li)
            acting.get_by_role("button").click()
            acting.wait_for_selector("text=李伟")
            acting.screenshot(path=str(artefact("action-link-done-390.png")), full_page=True)
            waiting.get_by_role("button").click()  # Wang presses after Li did
            waiting.wait_for_selector("text=已有人处理")
            assert "李伟" in waiting.content()
            waiting.screenshot(path=str(artefact("action-link-late-390.png")), full_page=True)
        alert = agent.get(f"/v1/alerts/{alert_id}")
    assert (alert["alert"]["status"], alert["alert"]["acknowledged_by"]) == ("acknowledged", "李伟")
    assert [e["kind"] for e in alert["history"]] == ["opened", "acknowledged"]
