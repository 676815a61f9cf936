"""The MQTT session against a real mosquitto: flow control holds even when the broker's does not."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import struct
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.clock import SystemClock
from edge.ingest import Delivery, MqttSession, parse_mqtt_url
from edge.ingest.wire import _PublishProperties
from tests.mqtt_publisher import Publisher
from tests.servers import MosquittoFactory
from tests.waiting import eventually

RECEIVE_MAXIMUM = 100
MESSAGES = 20_000


def _flood(url: str, topic: str, done: threading.Event) -> None:
    """Publish MESSAGES at QoS 1 as fast as the broker takes them (a window of 1000)."""
    address = parse_mqtt_url(url)
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="flood",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, b'{"n": %d}' % n, qos=1) for n in range(MESSAGES)]
        for info in infos:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()
        done.set()


async def _until_subscribed(
    session: MqttSession, url: str, topic: str, markers: list[Delivery], within_s: float = 10.0
) -> None:
    """Wait for the session's SUBACK: publish numbered markers on `topic` (under its filter) until
    the latest one arrives, then acknowledge them all. A broker drops what it takes before the
    subscription exists, so one marker may be lost; once the latest is in, every earlier one
    that was routed is in too (QoS 1 reaches one client in order)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    with Publisher(url) as publisher:
        for n in itertools.count():
            marker = b'{"marker": %d}' % n
            await asyncio.to_thread(publisher.publish, topic, marker)
            with contextlib.suppress(AssertionError):  # not within half a second: send another
                await eventually(functools.partial(_holds, markers, marker), 0.5)
                break
            assert loop.time() < deadline, f"no marker on {topic} within {within_s} s: no SUBACK"
    assert session.ack(markers) == len(markers)


def _holds(deliveries: list[Delivery], payload: bytes) -> bool:
    return any(d.payload == payload for d in deliveries)


async def test_unacknowledged_deliveries_never_exceed_the_receive_maximum(
    mosquitto_factory: MosquittoFactory,
) -> None:
    # the bench's broker settings: a wide window and unlimited queues, under which mosquitto
    # 2.0.11 sent tens of thousands of messages past a client's receive maximum
    broker = mosquitto_factory(extra_config=["max_inflight_messages 1000", "max_queued_messages 0"])
    pending: list[Delivery] = []
    outstanding = 0
    most = 0
    received = 0
    connected = asyncio.Event()

    markers: list[Delivery] = []

    def on_message(delivery: Delivery) -> None:
        nonlocal outstanding, most, received
        if delivery.topic == "flow/marker":
            markers.append(delivery)
            return
        pending.append(delivery)
        received += 1
        outstanding += 1
        most = max(most, outstanding)

    session = MqttSession(
        parse_mqtt_url(broker.url),
        "flow-control",
        ["flow/#"],
        on_message,
        clock=SystemClock(),
        receive_maximum=RECEIVE_MAXIMUM,
        on_connected=connected.set,
    )
    runner = asyncio.create_task(session.run())
    try:
        await asyncio.wait_for(connected.wait(), 10)
        await _until_subscribed(session, broker.url, "flow/marker", markers)
        done = threading.Event()
        flood = threading.Thread(target=_flood, args=(broker.url, "flow/x", done), daemon=True)
        flood.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while received < MESSAGES and loop.time() < deadline:
            # acknowledge in batches, late, as the ingest lane does after each commit
            await asyncio.sleep(0.01)
            batch, pending[:] = pending[:], []
            outstanding -= session.ack(batch)
        await asyncio.to_thread(done.wait, 30)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert received == MESSAGES
    assert most <= RECEIVE_MAXIMUM


async def test_a_long_pause_at_the_receive_maximum_keeps_the_connection(
    mosquitto_factory: MosquittoFactory,
) -> None:
    # a commit that stalls (a full disk) for longer than two keep-alives: the session stops
    # reading at its receive maximum, but not for so long that paho drops the connection
    broker = mosquitto_factory(extra_config=["max_inflight_messages 1000", "max_queued_messages 0"])
    pending: list[Delivery] = []
    markers: list[Delivery] = []
    connected = asyncio.Event()
    session = MqttSession(
        parse_mqtt_url(broker.url),
        "stalled",
        ["stall/#"],
        lambda d: (markers if d.topic == "stall/marker" else pending).append(d),
        clock=SystemClock(),
        receive_maximum=RECEIVE_MAXIMUM,
        keepalive_s=2,
        on_connected=connected.set,
    )
    runner = asyncio.create_task(session.run())
    try:
        await asyncio.wait_for(connected.wait(), 10)
        await _until_subscribed(session, broker.url, "stall/marker", markers)
        publisher = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id="stall-publisher",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        publisher.connect(broker.host, broker.port)
        publisher.loop_start()
        try:
            for n in range(3 * RECEIVE_MAXIMUM):
                publisher.publish("stall/x", b'{"n": %d}' % n, qos=1)
            await asyncio.sleep(6)  # three keep-alives without a single ack
            assert len(pending) == RECEIVE_MAXIMUM
            assert session.status.connected
            assert session.status.reconnects == 0
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            acked = 0
            while acked < 3 * RECEIVE_MAXIMUM and loop.time() < deadline:
                await asyncio.sleep(0.01)
                batch, pending[:] = pending[:], []
                acked += session.ack(batch)
        finally:
            publisher.disconnect()
            publisher.loop_stop()
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert acked == 3 * RECEIVE_MAXIMUM
    assert session.status.reconnects == 0


def _publish_packet(properties: bytes) -> bytes:
    topic = b"ce/c1/b1/tuya-sos-button/sos-1"
    body = b'{"action": "emergency"}'
    return struct.pack("!H", len(topic)) + topic + struct.pack("!H", 7) + properties + body


def test_publish_properties_decode_as_paho_decodes_them_with_shared_tables() -> None:
    import paho.mqtt._packet as packet_module

    assert packet_module.Properties is _PublishProperties  # type: ignore[attr-defined]
    empty = packet_module.decode_publish(0x32, _publish_packet(b"\x00"), MQTTProtocolVersion.MQTTv5)
    assert (empty.payload, empty.mid, str(empty.properties)) == (
        b'{"action": "emergency"}',
        7,
        "[]",
    )
    sent = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    sent.UserProperty = ("site", "b1")
    sent.MessageExpiryInterval = 30
    packed = sent.pack()  # type: ignore[no-untyped-call]
    decoded = packet_module.decode_publish(
        0x32, _publish_packet(packed), MQTTProtocolVersion.MQTTv5
    )
    properties: Any = decoded.properties
    assert properties.UserProperty == [("site", "b1")]
    assert properties.MessageExpiryInterval == 30
    assert decoded.payload == b'{"action": "emergency"}'
    # two packets never share the attributes they decoded
    assert not hasattr(empty.properties, "UserProperty")
