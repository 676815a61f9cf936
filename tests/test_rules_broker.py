"""Each rule kind through a real broker: `community-edge run` in a child process, devices
publishing over mosquitto, a rules file with durations of seconds, alerts read from the API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.tokens import TokenStore
from tests.agent_process import AgentProcess, wait_for
from tests.mqtt_publisher import publish
from tests.servers import MosquittoServer

C = "rules-it"  # this module's community
DEVICES = f"""device_id,model,community,building,unit
door-1,zigbee-door-contact,{C},b1,0101
acc-1,hikvision-access-controller,{C},b2,
rad-1,tuya-fall-radar,{C},b3,0301
rad-2,tuya-fall-radar,{C},b3,0302
pir-1,zigbee-pir-motion,{C},b4,1201
pir-2,zigbee-pir-motion,{C},b4,1202
smk-1,tuya-smoke-detector,{C},b5,0501
smk-2,tuya-smoke-detector,{C},b5,0601
sos-1,tuya-sos-button,{C},b6,0101
"""
RULES = f"""
timezone: Asia/Shanghai
rules:
  - id: no-activity
    kind: absence
    summary: No sign of activity at home
    severity: major
    quiet_hours: 0.0015  # 5.4 s
    window: {{from: "00:00", to: "00:00"}}  # all day
    households: ["{C}/b4/1201", "{C}/b4/1202"]
    signals:
      - {{name: motion, categories: [motion], when: {{field: motion, eq: true}}}}
  - id: confirmed-fire
    kind: correlation
    summary: Confirmed fire
    severity: critical
    within_seconds: 120
    min_devices: 2
    signals:
      - {{name: smoke, categories: [smoke], when: {{field: smoke, eq: true}}}}
overrides:
  - {{rule: door-held-open, community: {C}, for_seconds: 2}}
  - {{rule: fall, model: tuya-fall-radar, within_seconds: 2}}
away: ["{C}/b4/1202"]
"""


@pytest.fixture(scope="module")
def agent(
    mosquitto: MosquittoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentProcess]:
    base = tmp_path_factory.mktemp("rules-broker")
    (base / "devices.csv").write_text(DEVICES)
    (base / "rules.yaml").write_text(RULES)
    args = ["--devices", str(base / "devices.csv"), "--rules-file", str(base / "rules.yaml")]
    env = {"COMMUNITY_EDGE_RULES__TICK_S": "0.2"}
    with AgentProcess(base / "data", mosquitto.url, args, env) as process:
        yield process


def _publish(agent: AgentProcess, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Publish (every PUBACK in), then wait until the agent acknowledged them all after commit:
    the positive marker that every rule has seen them."""
    before = _acked(agent)
    publish(agent.mqtt_url, messages)
    wait_for(
        lambda: _acked(agent) >= before + len(messages),
        within_s=10,
        what=f"{len(messages)} messages acknowledged by the agent",
    )


def _acked(agent: AgentProcess) -> int:
    return sum(
        int(value)
        for key, value in agent.metrics().items()
        if key.startswith("community_edge_messages_acked_total")
    )


def _topic(building: str, model: str, device: str) -> str:
    return f"ce/{C}/{building}/{model}/{device}"


_RESPONDERS: dict[str, str] = {}  # a duty officer's token per running agent (by URL)


def _alerts(agent: AgentProcess, building: str) -> list[tuple[str, str, str, str]]:
    # read as the community's duty officer: a household's place id (household:1201) is shown
    # as it is to responders only; the bootstrap admin sees its pseudonym (gateway.privacy)
    token = _RESPONDERS.get(agent.url)
    if token is None:
        store = TokenStore(agent.data_dir / "tokens.db")  # the running agent reads it per request
        try:
            token = _RESPONDERS[agent.url] = store.create("duty_officer", [C], "rules-test")[1]
        finally:
            store.close()
    response = httpx.get(
        f"{agent.url}/v1/alerts",
        params={"community": C, "limit": 500},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
    )
    response.raise_for_status()
    items = response.json()["items"]
    return sorted(
        (a["rule"], a["device_id"], a["status"], a["severity"])
        for a in items
        if a["building"] == building
    )


def test_door_held_open_raises_after_its_hold_and_clears_on_close(agent: AgentProcess) -> None:
    topic = _topic("b1", "zigbee-door-contact", "door-1")
    _publish(agent, [(topic, {"contact": False})])
    assert _alerts(agent, "b1") == []  # the agent has the open door, within the 2 s hold
    wait_for(lambda: _alerts(agent, "b1"), within_s=10, what="door-held-open")
    assert _alerts(agent, "b1") == [("door-held-open", "door-1", "active", "warning")]
    _publish(agent, [(topic, {"contact": True})])
    wait_for(lambda: _alerts(agent, "b1")[0][2] == "resolved", within_s=10, what="cleared")


def test_five_denied_swipes_raise_one_alert(agent: AgentProcess) -> None:
    topic = _topic("b2", "hikvision-access-controller", "acc-1")
    swipe = {"eventType": "AccessControllerEvent"}
    messages = [
        (
            topic,
            swipe
            | {
                "AccessControllerEvent": {
                    "majorEventType": 5,
                    "subEventType": 6,
                    "doorNo": 1,
                    "serialNo": n,
                }
            },
        )
        for n in range(7)
    ]
    _publish(agent, messages[:4])  # returns once the agent has all four
    assert _alerts(agent, "b2") == []
    _publish(agent, messages[4:])  # and all seven: the last two cannot add a second alert
    wait_for(lambda: _alerts(agent, "b2"), within_s=10, what="denied-swipes")
    alerts = agent.get("/v1/alerts", community=C, limit=500)["items"]
    swipes = [a for a in alerts if a["rule"] == "denied-swipes"]
    assert [(a["device_id"], a["count"]) for a in swipes] == [("acc-1", 1)]


def test_maybe_fall_becomes_a_fall_unless_withdrawn(agent: AgentProcess) -> None:
    r1, r2 = _topic("b3", "tuya-fall-radar", "rad-1"), _topic("b3", "tuya-fall-radar", "rad-2")
    published = time.monotonic()
    _publish(
        agent,
        [(r1, {"fall_down_status": "maybe_fall"}), (r2, {"fall_down_status": "maybe_fall"})],
    )
    _publish(agent, [(r2, {"fall_down_status": "none"})])
    wait_for(
        lambda: ("fall", "rad-1", "active", "critical") in _alerts(agent, "b3"),
        within_s=10,
        what="fall",
    )
    # A clock that must move: rad-2's 2 s window must be over (plus ticks of 0.2 s) before its
    # withdrawn fall can be shown never to come.
    time.sleep(max(0.0, published + 3.0 - time.monotonic()))
    assert _alerts(agent, "b3") == [
        ("fall", "rad-1", "active", "critical"),
        ("possible-fall", "rad-1", "resolved", "major"),  # superseded by the fall (#14)
        ("possible-fall", "rad-2", "resolved", "major"),
    ]


def test_a_quiet_household_raises_absence_and_an_away_one_does_not(agent: AgentProcess) -> None:
    wait_for(lambda: _alerts(agent, "b4"), within_s=15, what="no-activity")
    assert _alerts(agent, "b4") == [("no-activity", "household:1201", "active", "major")]
    _publish(agent, [(_topic("b4", "zigbee-pir-motion", "pir-1"), {"occupancy": True})])
    wait_for(lambda: _alerts(agent, "b4")[0][2] == "resolved", within_s=10, what="activity")
    assert [a[1] for a in _alerts(agent, "b4")] == ["household:1201"]  # 1202 is away


def test_two_smoke_detectors_raise_one_confirmed_fire_and_an_sos_is_immediate(
    agent: AgentProcess,
) -> None:
    _publish(
        agent,
        [
            (_topic("b5", "tuya-smoke-detector", "smk-1"), {"smoke": True, "test": False}),
            (_topic("b5", "tuya-smoke-detector", "smk-2"), {"smoke": True, "test": False}),
            (_topic("b6", "tuya-sos-button", "sos-1"), {"action": "emergency"}),
        ],
    )
    wait_for(lambda: len(_alerts(agent, "b5")) == 3, within_s=10, what="fire")
    assert _alerts(agent, "b5") == [
        ("confirmed-fire", "building:b5", "active", "critical"),
        ("smoke", "smk-1", "active", "critical"),
        ("smoke", "smk-2", "active", "critical"),
    ]
    fire = [
        a
        for a in agent.get("/v1/alerts", community=C, limit=500)["items"]
        if a["rule"] == "confirmed-fire"
    ]
    assert fire[0]["summary"].endswith("(smk-1, smk-2)")
    assert _alerts(agent, "b6") == [("sos", "sos-1", "active", "critical")]
