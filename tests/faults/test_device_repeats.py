"""A controller repeating an event five times (same serial number, same time: it did not hear
back) into a counting rule, through a real mosquitto into the agent as users run it: each event
is stored once and counted once; the rule fires at the fifth distinct event, not the fifth copy,
and its alert is notified once (one `opened` event at a webhook receiver).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.agent_process import AgentProcess, wait_for
from tests.faults.test_redeliveries import _env, _receiver
from tests.mqtt_publisher import publish
from tests.servers import MosquittoServer

COMMUNITY = "fault-device-repeats"
GATE = f"ce/{COMMUNITY}/b1/hikvision-access-controller/gate-7"
ACKED = "community_edge_messages_acked_total"
REPEATS = "community_edge_device_repeats_total"
BEIJING = timezone(timedelta(hours=8))


def _denied(serial: int, at: datetime) -> dict[str, Any]:
    return {
        "dateTime": at.astimezone(BEIJING).isoformat(timespec="seconds"),
        "eventType": "AccessControllerEvent",
        "AccessControllerEvent": {
            "majorEventType": 5,
            "subEventType": 9,  # invalid card number: "denied"
            "doorNo": 2,
            "serialNo": serial,
        },
    }


def _acked(agent: AgentProcess) -> int:
    return int(sum(v for k, v in agent.metrics().items() if k.startswith(ACKED + "{")))


def test_a_controller_repeating_each_event_five_times_counts_each_once(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    start = datetime.now(BEIJING).replace(microsecond=0) - timedelta(seconds=30)
    data = tmp_path / "repeats-agent"  # its own client id on the shared broker
    first = AgentProcess(data, mosquitto.url)
    first.start()  # creates the sessions and their subscriptions: nothing published is missed
    assert first.stop() == 0
    with _receiver() as receiver, AgentProcess(data, mosquitto.url, env=_env(receiver)) as agent:
        # four denied cards, each event sent five times; then the fifth card, five times
        four = [(GATE, _denied(500 + n, start + timedelta(seconds=n))) for n in range(4)]
        sent = publish(mosquitto.url, [m for m in four for _ in range(5)])
        wait_for(lambda: _acked(agent) == sent, what="20 messages acknowledged")
        alerts = agent.get("/v1/alerts", community=COMMUNITY)["items"]
        # acknowledged is committed; the reading store takes its batch up to 0.1 s later
        readings = _readings_when(agent, 4)
        metrics = agent.metrics()
        assert (sent, len(readings), metrics[REPEATS]) == (20, 4, 16)
        assert alerts == []  # four distinct swipes: below the rule's five

        fifth = (GATE, _denied(504, start + timedelta(seconds=4)))
        publish(mosquitto.url, [fifth] * 5)
        wait_for(lambda: _acked(agent) == 25, what="25 messages acknowledged")
        alerts = agent.get("/v1/alerts", community=COMMUNITY)["items"]
        readings = _readings_when(agent, 5)
        metrics = agent.metrics()
        history = agent.get(f"/v1/alerts/{alerts[0]['id']}")["history"] if alerts else []
        notified = wait_for(
            lambda: [e for r in receiver.received for e in r.events if e["kind"] == "opened"],
            what="the alert notified",
        )
    print(
        f"\ncontroller repeating each of 5 denied swipes 5 times: 25 published, "
        f"{len(readings)} readings stored, {metrics[REPEATS]:.0f} repeats counted, alerts "
        f"{[(a['rule'], a['count']) for a in alerts]}"
    )
    assert (len(readings), metrics[REPEATS]) == (5, 20)
    assert [(a["rule"], a["count"], a["status"]) for a in alerts] == [
        ("denied-swipes", 1, "active")
    ]
    assert [event["kind"] for event in history] == ["opened"]
    assert [(e["alert"]["rule"], e["id"]) for e in notified] == [
        ("denied-swipes", history[0]["id"])
    ]


def _readings_when(agent: AgentProcess, at_least: int) -> list[dict[str, object]]:
    """The gate's stored readings once at least `at_least` are there (the exact count is asserted
    by the caller: more would be a repeat stored twice)."""

    def stored() -> list[dict[str, object]]:
        items: list[dict[str, object]] = agent.get("/v1/readings", device_id="gate-7", limit=100)[
            "items"
        ]
        return items if len(items) >= at_least else []

    found: list[dict[str, object]] = wait_for(stored, what=f"{at_least} readings stored")
    return found
