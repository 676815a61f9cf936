"""The one test recorder: a paho client that records every message under one topic filter.

It returns from its constructor only once the broker's SUBACK is in, so nothing published after
it was built can be missed; `sync()` proves everything the broker took before has arrived.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.ingest import parse_mqtt_url
from tests.waiting import wait_until


class Recorder:
    """An outside subscriber (QoS 1, subscribed once constructed) that keeps every message it sees.

    `wait_for(n)` returns what arrived, in arrival order, once `n` messages are in and a marker
    sent after them came back; use as a context manager or `close()`.
    """

    def __init__(
        self,
        url: str,
        topic_filter: str,
        *,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        timeout: float = 5.0,
    ) -> None:
        broker = parse_mqtt_url(url)
        self._messages: list[tuple[str, bytes]] = []
        self._markers: set[bytes] = set()
        # Markers travel on a topic of this recorder's own: nobody else sees or records them.
        self._marker_topic = f"test/recorder-marker/{uuid.uuid4().hex}"
        self._lock = threading.Lock()
        self._subscribed = threading.Semaphore(0)
        self._granted: list[ReasonCode] = []
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-rec-{os.getpid()}-{time.monotonic_ns()}",
            protocol=protocol,
        )
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        self._client.subscribe([(topic_filter, 1), (self._marker_topic, 1)])
        assert self._subscribed.acquire(timeout=timeout), f"no SUBACK for {topic_filter}"
        refused = [code for code in self._granted if code.is_failure]
        assert not refused, f"subscription to {topic_filter} refused: {refused}"

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def messages(self) -> list[tuple[str, bytes]]:
        return self.received()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[str, bytes]]:
        """Wait until `count` messages are in, then `sync()` so any extra one is in too."""
        deadline = time.monotonic() + timeout
        while len(self.received()) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        self.sync()
        return self.received()

    def sync(self, timeout: float = 10.0) -> None:
        """Publish a marker to this recorder and wait for it to come back.

        mosquitto routes a message to subscribers as it takes it in, and delivers QoS 1 to one
        client in order: once the marker is back, every message it acknowledged to any publisher
        before the marker was sent has been delivered here.
        """
        marker = uuid.uuid4().hex.encode()
        self._client.publish(self._marker_topic, marker, qos=1)
        wait_until(lambda: self._has_marker(marker), timeout, "the recorder's own marker", 0.005)

    def received(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self._messages)

    def _has_marker(self, marker: bytes) -> bool:
        with self._lock:
            return marker in self._markers

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            if message.topic == self._marker_topic:
                self._markers.add(bytes(message.payload))
            else:
                self._messages.append((message.topic, bytes(message.payload)))

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._granted = list(reason_codes)
        self._subscribed.release()


@contextmanager
def sys_value(
    url: str, topic: str, parse: Callable[[bytes], int], initial: int
) -> Iterator[Callable[[], int]]:
    """The latest value the broker publishes on a `$SYS` topic, as `parse` reads it (`initial`
    before the first arrives); mosquitto publishes these every `sys_interval`."""
    latest = [initial]

    def on_message(client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        latest[0] = parse(bytes(message.payload))

    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"sys-{os.getpid()}-{time.monotonic_ns()}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_message = on_message
    broker = parse_mqtt_url(url)
    client.connect(broker.host, broker.port)
    client.subscribe(topic)
    client.loop_start()
    try:
        yield lambda: latest[0]
    finally:
        client.disconnect()
        client.loop_stop()
