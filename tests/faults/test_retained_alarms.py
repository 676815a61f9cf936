"""Retained messages do not replay alarms (issue #20, finding 6), against a real mosquitto.

A device (or anyone with its credentials) publishes an SOS press with the RETAIN flag. mosquitto
keeps it and sends it to every new subscription: the agent's alarm session on its first start,
and again after the broker lost its session. The agent records it as a stale dead letter and
raises nothing; a live press from the same button is still an alarm, and a reconnect of a present
session gets no retained copies at all (retain handling 1).
"""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.agent_process import AgentProcess, wait_for
from tests.mqtt_publisher import publish
from tests.servers import MosquittoServer

COMMUNITY = "fault-retained"
SOS = f"ce/{COMMUNITY}/b1/tuya-sos-button/sos-3"
STALE = 'community_edge_dead_letters_total{cause="stale_retained"}'
ACKED = "community_edge_messages_acked_total"


def _publish_retained(url: str, topic: str, payload: bytes) -> None:
    host, _, port = url.removeprefix("mqtt://").partition(":")
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"retainer-{time.monotonic_ns()}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.connect(host, int(port))
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(10)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def _acked(agent: AgentProcess) -> int:
    return int(sum(v for k, v in agent.metrics().items() if k.startswith(ACKED + "{")))


def test_a_retained_sos_is_recorded_as_stale_and_never_raised(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    _publish_retained(mosquitto.url, SOS, b'{"action": "emergency", "battery": 80}')
    data = tmp_path / "retained-agent"  # its own client id: a new session on the shared broker
    with AgentProcess(data, mosquitto.url) as agent:  # a new session: mosquitto sends it
        wait_for(lambda: agent.metrics().get(STALE) == 1, what="the retained press recorded")
        assert agent.get("/v1/alerts", community=COMMUNITY)["items"] == []
        letters = agent.get("/v1/dead-letters")
        assert [(d["topic"], d["cause"]) for d in letters] == [(SOS, "stale_retained")]
        # a live press of the same button is an alarm
        publish(mosquitto.url, [(SOS, {"action": "emergency", "battery": 80})])
        wait_for(
            lambda: len(agent.get("/v1/alerts", community=COMMUNITY)["items"]) == 1,
            what="the live press raised",
        )
    with AgentProcess(data, mosquitto.url) as agent:  # the session is present: nothing resent
        publish(mosquitto.url, [(SOS, {"action": None, "battery": 79})])
        wait_for(lambda: _acked(agent) == 1, what="the battery report acknowledged")
        metrics = agent.metrics()
        alerts = agent.get("/v1/alerts", community=COMMUNITY)["items"]
    assert metrics.get(STALE, 0) == 0  # no retained copy on a reconnect of a present session
    assert [(a["rule"], a["count"]) for a in alerts] == [("sos", 1)]
