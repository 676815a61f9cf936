"""The embedded broker against real paho-mqtt clients (MQTT 5 and 3.1.1) and raw sockets."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.embedded_broker import EmbeddedBroker

_TIMEOUT = 4.0


async def _until(condition: Callable[[], object], what: str) -> None:
    """Wait for a condition that a paho thread makes true, giving the broker the event loop."""
    deadline = time.monotonic() + _TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class _Client:
    """A paho client on its own network thread; what it receives is recorded for the test."""

    def __init__(
        self,
        port: int,
        client_id: str = "",
        *,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        clean_start: bool = True,
        session_expiry: int = 0,
        receive_maximum: int = 0,
        manual_ack: bool = False,
    ) -> None:
        self.port = port
        self.protocol = protocol
        self.clean_start = clean_start
        self.session_expiry = session_expiry
        self.receive_maximum = receive_maximum
        self.messages: list[mqtt.MQTTMessage] = []
        self.acked: set[int] = set()  # mids of SUBACK and PUBACK received
        self.granted: dict[int, list[int]] = {}
        self.session_present: list[bool] = []  # one entry per CONNACK
        self.paho = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=None if protocol == MQTTProtocolVersion.MQTTv5 else clean_start,
            protocol=protocol,
            manual_ack=manual_ack,
        )
        self.paho.on_connect = self._on_connect
        self.paho.on_message = self._on_message
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_publish = self._on_publish
        self.paho.on_unsubscribe = self._on_unsubscribe
        self._started = False

    def _on_connect(
        self, _c: mqtt.Client, _u: Any, flags: mqtt.ConnectFlags, rc: ReasonCode, _p: Any
    ) -> None:
        assert not rc.is_failure
        self.session_present.append(bool(flags.session_present))

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.append(message)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        self.granted[mid] = [code.value for code in codes]
        self.acked.add(mid)

    def _on_unsubscribe(
        self, _c: mqtt.Client, _u: Any, mid: int, _codes: list[ReasonCode], _p: Any
    ) -> None:
        self.acked.add(mid)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _rc: ReasonCode, _p: Any) -> None:
        self.acked.add(mid)

    async def connect(self) -> None:
        if self.protocol == MQTTProtocolVersion.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if self.session_expiry:
                properties.SessionExpiryInterval = self.session_expiry
            if self.receive_maximum:
                properties.ReceiveMaximum = self.receive_maximum
            self.paho.connect_async(
                "127.0.0.1", self.port, clean_start=self.clean_start, properties=properties
            )
        else:
            self.paho.connect_async("127.0.0.1", self.port)
        self.paho.loop_start()
        self._started = True
        await _until(lambda: self.session_present, "CONNACK")

    async def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        _, mid = self.paho.subscribe(topic, qos)
        assert mid is not None
        await _until(lambda: mid in self.acked, f"SUBACK for {topic}")
        return self.granted[mid]

    async def unsubscribe(self, topic: str) -> None:
        _, mid = self.paho.unsubscribe(topic)
        await _until(lambda: mid in self.acked, f"UNSUBACK for {topic}")

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish; for QoS 1 and 2, return once the broker has acknowledged."""
        info = self.paho.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            await _until(lambda: info.mid in self.acked, f"acknowledgement of {topic}")

    async def expect(self, count: int) -> list[mqtt.MQTTMessage]:
        await _until(lambda: len(self.messages) >= count, f"{count} messages")
        return self.messages[:count]

    def payloads(self) -> list[bytes]:
        return [bytes(message.payload) for message in self.messages]

    async def close(self) -> None:
        if self._started:
            self._started = False
            self.paho.disconnect()
            await asyncio.to_thread(self.paho.loop_stop)


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as embedded:
        yield embedded


@pytest.fixture
async def clients(broker: EmbeddedBroker) -> AsyncIterator[Callable[..., _Client]]:
    made: list[_Client] = []

    def make(client_id: str = "", **options: Any) -> _Client:
        client = _Client(broker.port, client_id, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def _connected(make: Callable[..., _Client], client_id: str = "", **options: Any) -> _Client:
    client = make(client_id, **options)
    await client.connect()
    return client


async def _barrier(publisher: _Client, subscriber: _Client, topic: str = "barrier") -> None:
    """Return once the subscriber has all that the broker sent it before a QoS 0 marker."""
    before = len(subscriber.messages)
    await publisher.publish(topic, b"marker", qos=0)
    await _until(
        lambda: any(m.topic == topic for m in subscriber.messages[before:]), "barrier message"
    )


async def test_wildcards_qos0_and_qos1(clients: Callable[..., _Client]) -> None:
    sub = await _connected(clients, "sub")
    pub = await _connected(clients, "pub")
    assert await sub.subscribe("sc/+/air/#", qos=1) == [1]
    assert await sub.subscribe("sc/site-a/door/+", qos=0) == [0]
    assert await sub.subscribe("exact/topic", qos=2) == [1]  # QoS 2 is granted as QoS 1

    await pub.publish("sc/site-a/air/dev-1/up", b"q1", qos=1)
    await pub.publish("sc/site-b/air", b"q0", qos=0)  # "#" also matches the parent level
    await pub.publish("sc/site-a/door/dev-2", b"q1->q0", qos=1)
    await pub.publish("sc/site-a/door/dev-2/extra", b"no match", qos=1)
    await pub.publish("exact/topic", b"q2->q1", qos=2)
    await pub.publish("$SYS/air/x", b"no match either", qos=1)
    await _barrier(pub, sub, "sc/x/air/barrier")

    received = {m.payload: (m.topic, m.qos) for m in sub.messages}
    assert received == {
        b"q1": ("sc/site-a/air/dev-1/up", 1),
        b"q0": ("sc/site-b/air", 0),
        b"q1->q0": ("sc/site-a/door/dev-2", 0),
        b"q2->q1": ("exact/topic", 1),
        b"marker": ("sc/x/air/barrier", 0),
    }

    await sub.unsubscribe("sc/+/air/#")
    await pub.publish("sc/site-a/air/dev-1/up", b"after unsubscribe", qos=1)
    await _barrier(pub, sub, "exact/topic")
    assert b"after unsubscribe" not in sub.payloads()


async def test_retained_message_is_delivered_on_subscribe_and_cleared(
    clients: Callable[..., _Client],
) -> None:
    pub = await _connected(clients, "pub")
    await pub.publish("home/lobby/state", b"open", qos=1, retain=True)
    await pub.publish("home/garage/state", b"closed", qos=1, retain=True)
    await pub.publish("home/garage/state", b"", qos=1, retain=True)  # clears it

    late = await _connected(clients, "late")
    await late.subscribe("home/+/state")
    [message] = await late.expect(1)
    assert (message.topic, message.payload, message.retain) == ("home/lobby/state", b"open", True)

    await pub.publish("home/lobby/state", b"closed", qos=1, retain=True)
    await late.expect(2)
    assert late.messages[1].retain is False  # live messages go out with retain 0


async def test_persistent_session_receives_what_was_published_while_offline(
    clients: Callable[..., _Client],
) -> None:
    options: dict[str, Any] = {"clean_start": False, "session_expiry": 3600}
    first = await _connected(clients, "keeper", **options)
    assert first.session_present == [False]
    await first.subscribe("alerts/#")
    await first.close()

    pub = await _connected(clients, "pub")
    for n in range(3):
        await pub.publish(f"alerts/{n}", str(n).encode(), qos=1)
    await pub.publish("alerts/ignored", b"qos0 is not kept", qos=0)
    # a QoS 0 publish has no answer: this PUBACK, on the same connection, says the broker has
    # handled it while "keeper" was still away (else it may meet the reconnected session live)
    await pub.publish("sync/after-qos0", b"", qos=1)

    second = await _connected(clients, "keeper", **options)
    assert second.session_present == [True]
    messages = await second.expect(3)
    assert [(m.payload, m.qos) for m in messages] == [(b"0", 1), (b"1", 1), (b"2", 1)]
    await _barrier(pub, second, "alerts/barrier")
    assert b"qos0 is not kept" not in second.payloads()


async def test_unacknowledged_message_is_resent_with_dup_on_resume(
    clients: Callable[..., _Client],
) -> None:
    options: dict[str, Any] = {"clean_start": False, "session_expiry": 60}
    first = await _connected(clients, "resumer", manual_ack=True, **options)
    await first.subscribe("cmd/#")
    pub = await _connected(clients, "pub")
    await pub.publish("cmd/reboot", b"now", qos=1)
    await first.expect(1)
    await first.close()  # without acknowledging

    second = await _connected(clients, "resumer", **options)
    [message] = await second.expect(1)
    assert (message.payload, message.dup) == (b"now", True)


async def test_receive_maximum_limits_unacknowledged_messages(
    clients: Callable[..., _Client],
) -> None:
    slow = await _connected(clients, "slow", manual_ack=True, receive_maximum=5)
    await slow.subscribe("load/#", qos=1)
    await slow.subscribe("barrier", qos=0)
    pub = await _connected(clients, "pub")
    for n in range(12):
        await pub.publish(f"load/{n}", str(n).encode(), qos=1)

    await _barrier(pub, slow)
    first = [m for m in slow.messages if m.topic.startswith("load/")]
    assert [m.payload for m in first] == [b"0", b"1", b"2", b"3", b"4"]

    for message in first:
        slow.paho.ack(message.mid, message.qos)
    await _until(lambda: len(slow.messages) >= 11, "the next five")
    await _barrier(pub, slow)
    loads = [m.payload for m in slow.messages if m.topic.startswith("load/")]
    assert loads == [str(n).encode() for n in range(10)]


async def test_shared_subscription_splits_messages(clients: Callable[..., _Client]) -> None:
    workers = [await _connected(clients, f"worker-{n}") for n in range(2)]
    for worker in workers:
        await worker.subscribe("$share/ingest/sc/+/up", qos=1)
    pub = await _connected(clients, "pub")
    for n in range(10):
        await pub.publish(f"sc/{n}/up", str(n).encode(), qos=1)

    await _until(lambda: sum(len(w.messages) for w in workers) >= 10, "ten messages")
    first, second = (set(w.payloads()) for w in workers)
    assert len(first) == len(second) == 5
    assert first | second == {str(n).encode() for n in range(10)}


async def test_mqtt_311_client(clients: Callable[..., _Client]) -> None:
    v311 = MQTTProtocolVersion.MQTTv311
    old = await _connected(clients, "old", protocol=v311)
    new = await _connected(clients, "new")
    await new.publish("mixed/retained", b"kept", qos=1, retain=True)
    assert await old.subscribe("mixed/#", qos=1) == [1]
    await old.publish("mixed/from-311", b"hello", qos=1)
    messages = await old.expect(2)
    assert [(m.topic, m.payload, m.qos) for m in messages] == [
        ("mixed/retained", b"kept", 1),
        ("mixed/from-311", b"hello", 1),
    ]


async def test_garbage_on_one_connection_does_not_affect_others(
    broker: EmbeddedBroker, clients: Callable[..., _Client]
) -> None:
    sub = await _connected(clients, "sub")
    await sub.subscribe("ok/#")

    reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n" + os.urandom(256))
    assert await asyncio.wait_for(reader.read(), _TIMEOUT) == b""  # closed by the broker
    writer.close()
    await writer.wait_closed()

    # A valid CONNECT, then a PUBLISH whose topic length runs past the end of the packet.
    reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
    writer.write(_connect_packet(b"raw", keepalive=30) + b"\x30\x04\x00\x09ok")
    connack = await asyncio.wait_for(reader.readexactly(4), _TIMEOUT)
    assert connack == b"\x20\x02\x00\x00"
    assert await asyncio.wait_for(reader.read(), _TIMEOUT) == b""
    writer.close()
    await writer.wait_closed()

    pub = await _connected(clients, "pub")
    await pub.publish("ok/still", b"fine", qos=1)
    [message] = await sub.expect(1)
    assert message.payload == b"fine"


async def test_silent_client_is_disconnected_after_keep_alive(broker: EmbeddedBroker) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
    writer.write(_connect_packet(b"quiet", keepalive=1))
    assert await asyncio.wait_for(reader.readexactly(4), _TIMEOUT) == b"\x20\x02\x00\x00"
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), _TIMEOUT) == b""
    assert 1.0 < time.monotonic() - started < 3.0
    writer.close()
    await writer.wait_closed()


async def test_stop_closes_client_connections() -> None:
    broker = EmbeddedBroker()
    async with broker:
        reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
        writer.write(_connect_packet(b"stays", keepalive=60))
        assert await asyncio.wait_for(reader.readexactly(4), _TIMEOUT) == b"\x20\x02\x00\x00"
    assert await asyncio.wait_for(reader.read(), _TIMEOUT) == b""
    writer.close()
    await writer.wait_closed()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", broker.port)


def _connect_packet(client_id: bytes, keepalive: int) -> bytes:
    """An MQTT 3.1.1 CONNECT with clean session."""
    body = b"\x00\x04MQTT\x04\x02" + keepalive.to_bytes(2, "big")
    body += len(client_id).to_bytes(2, "big") + client_id
    return bytes([0x10, len(body)]) + body
