"""A paho client that records every message under one topic filter, for tests that publish."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.ingest import parse_mqtt_url


class Recorder:
    """An outside subscriber (QoS 1, subscribed once constructed) that keeps every message it sees.

    `wait_for(n)` returns what arrived, in arrival order; use as a context manager or `close()`.
    """

    def __init__(self, url: str, topic_filter: str) -> None:
        broker = parse_mqtt_url(url)
        self._messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-rec-{os.getpid()}-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv5,
        )
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        self._client.subscribe(topic_filter, qos=1)
        assert self._subscribed.wait(5), "no SUBACK"

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
        deadline = time.monotonic() + timeout
        while len(self.received()) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # anything beyond `count` would arrive now
        return self.received()

    def received(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self._messages)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._messages.append((message.topic, bytes(message.payload)))

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._subscribed.set()
