"""MQTT 3.1.1 against a real mosquitto: the same promises as MQTT 5 without its receive maximum.

The session's own reading pause bounds what it holds; a persistent session (clean session off)
keeps what the broker queued while the agent was away; nothing is acknowledged before it is
committed, so a SIGKILL loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

from edge.clock import SystemClock
from edge.ingest import Delivery, MqttSession, parse_mqtt_url
from tests.agent_process import AgentProcess
from tests.mqtt_publisher import publish
from tests.servers import MosquittoFactory
from tests.waiting import eventually, wait_until

RECEIVE_MAXIMUM = 100


async def test_a_311_session_never_holds_more_than_its_receive_maximum(
    mosquitto_factory: MosquittoFactory,
) -> None:
    # a broker window far above ours: 3.1.1 cannot tell the broker our limit, so we stop reading
    broker = mosquitto_factory(extra_config=["max_inflight_messages 1000", "max_queued_messages 0"])
    pending: list[Delivery] = []
    held, most, received = 0, 0, 0
    connected = asyncio.Event()

    def on_message(delivery: Delivery) -> None:
        nonlocal held, most, received
        pending.append(delivery)
        received += 1
        held += 1
        most = max(most, held)

    session = MqttSession(
        parse_mqtt_url(broker.url),
        "flow-311",
        ["flow311/#"],
        on_message,
        clock=SystemClock(),
        receive_maximum=RECEIVE_MAXIMUM,
        protocol="3.1.1",
        on_connected=connected.set,
    )
    runner = asyncio.create_task(session.run())
    messages = 5_000
    try:
        await asyncio.wait_for(connected.wait(), 10)
        await eventually(lambda: session.status.connected, 5, "the session connected")
        # the SUBACK: a marker message published after subscribing must come back
        await asyncio.to_thread(publish, broker.url, [("flow311/marker", b"{}")])
        await eventually(lambda: received >= 1, 10, "the marker delivered")
        sent = threading.Thread(
            target=publish,
            args=(broker.url, [(f"flow311/{n}", b"{}") for n in range(messages)]),
            kwargs={"max_inflight": 1000},
            daemon=True,
        )
        sent.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while received < messages + 1 and loop.time() < deadline:
            await asyncio.sleep(0.01)  # acknowledge in batches, late, as a lane after its commit
            batch, pending[:] = pending[:], []
            held -= session.ack(batch)
        await asyncio.to_thread(sent.join, 30)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert received == messages + 1
    assert most <= RECEIVE_MAXIMUM


def test_an_agent_on_311_keeps_what_the_broker_queued_and_loses_nothing_to_a_kill(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory(extra_config=["max_queued_messages 0"])
    agent = AgentProcess(tmp_path / "agent", broker.url, ["--mqtt-protocol", "3.1.1"])
    topic = "ce/c311/b1/zigbee-door-contact/door-{n}"
    payload = json.dumps({"contact": True, "battery": 90}).encode()
    try:
        agent.start()  # creates its persistent sessions
        assert agent.stop() == 0
        # queued by the broker for the 3.1.1 session while the agent is away
        assert publish(broker.url, [(topic.format(n=n), payload) for n in range(300)]) == 300
        agent.start()
        wait_until(
            lambda: len(agent.get("/v1/readings", community=["c311"], limit=5000)["items"]) == 300,
            30,
            "the 300 queued readings stored",
        )
        agent.kill()
        agent.start()
        assert publish(broker.url, [(topic.format(n=n), payload) for n in range(300, 400)]) == 100

        def all_stored() -> list[dict[str, object]]:
            items: list[dict[str, object]] = agent.get(
                "/v1/readings", community=["c311"], limit=5000
            )["items"]
            return items if len(items) >= 400 else []

        items = wait_until(all_stored, 30, "all 400 readings stored")
    finally:
        agent.kill()
    assert len(items) == 400
    assert {i["device_id"] for i in items} == {f"door-{n}" for n in range(400)}


def test_a_311_client_is_what_the_broker_sees(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    """The agent really speaks 3.1.1: mosquitto logs the protocol of each new client."""
    log = tmp_path / "mosquitto.log"  # a file destination is written line by line
    broker = mosquitto_factory(extra_config=[f"log_dest file {log}"])
    agent = AgentProcess(tmp_path / "agent", broker.url, ["--mqtt-protocol", "3.1.1"])
    try:
        agent.start()
        lines = wait_until(
            lambda: [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "New client connected" in line and agent.client_id in line
            ],
            10,
            "mosquitto logged the agent's connections",
        )
    finally:
        agent.kill()
    # "as agent-agent (p2, c0, k30)": mosquitto numbers MQTT 3.1.1 p2 (5 is p5), c0 a kept session
    assert lines
    assert all("(p2, c0," in line for line in lines), lines
