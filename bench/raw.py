"""The yardstick: a raw paho-mqtt consumer at QoS 1 that does nothing but count.

Measured like the agent: its persistent session is created first, the broker queues N messages
while it is offline, then it connects and the drain is timed from CONNACK to the N-th message.
It asks for the same receive maximum as the agent (2000) and acknowledges automatically.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from bench.machine import CpuMeter, process
from bench.publish import PublisherPool, PublishResult
from bench.rig import SESSION_EXPIRY_S, BenchError, Rig
from bench.traffic import Traffic

RECEIVE_MAXIMUM = 2000  # the agent's default `mqtt.receive_maximum`


@dataclass(frozen=True)
class RawResult:
    """How fast the raw consumer drained `messages` queued messages."""

    messages: int
    seconds: float
    preload: PublishResult
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


class _Consumer:
    """A paho client with a persistent session that counts messages and notes when it connected."""

    def __init__(self, rig: Rig, client_id: str, expected: int) -> None:
        self.expected = expected
        self.received = 0
        self.connected_at = 0.0
        self.done_at = 0.0
        self.done = threading.Event()
        self._subscribed = threading.Event()
        self._connected = threading.Event()
        self._rig = rig
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_connect(self, *args: Any) -> None:
        self.connected_at = time.monotonic()
        self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.received += 1  # only paho's network thread writes it
        if self.received == self.expected:
            self.done_at = time.monotonic()
            self.done.set()

    def connect(self) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        broker = self._rig.broker
        self.client.connect(broker.host, broker.port, clean_start=False, properties=properties)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise BenchError("raw consumer: no CONNACK")

    def subscribe(self, topic_filter: str) -> None:
        self.client.subscribe([(topic_filter, SubscribeOptions(qos=1))])
        if not self._subscribed.wait(10):
            raise BenchError("raw consumer: no SUBACK")

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def measure_raw(rig: Rig, pool: PublisherPool, traffic: Traffic) -> RawResult:
    """Queue `traffic` for an offline raw consumer, then time its drain."""
    client_id = "bench-raw-consumer"
    setup = _Consumer(rig, client_id, traffic.messages)
    setup.connect()
    setup.subscribe(f"ce/{traffic.community}/#")
    setup.disconnect()
    preload = pool.publish(traffic)
    if preload.failed:
        raise BenchError(f"raw consumer preload: {preload.failed} messages refused by the broker")
    consumer = _Consumer(rig, client_id, preload.sent)
    meter = CpuMeter({"consumer": [process(os.getpid())], "broker": [process(rig.broker.pid)]})
    meter.start()
    consumer.connect()
    try:
        if not consumer.done.wait(max(60.0, preload.sent / 1000)):
            raise BenchError(
                f"raw consumer received {consumer.received} of {preload.sent} queued messages"
            )
        cpu = meter.stop()
    finally:
        consumer.disconnect()
        rig.forget_session(client_id)
    return RawResult(preload.sent, consumer.done_at - consumer.connected_at, preload, cpu)
