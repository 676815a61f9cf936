"""The one test publisher: a paho client that publishes at QoS 1 and returns once the broker's
PUBACK is in, so a test never races the broker with what it just sent."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.ingest import parse_mqtt_url

Payload = bytes | str | Mapping[str, Any]


def _encode(payload: Payload) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return orjson.dumps(payload)


class Publisher:
    """An outside device-like client; use as a context manager or `close()`.

    `publish` and `publish_many` return only once the broker acknowledged every message
    (PUBACK at QoS 1), and fail naming the topic when it does not within `timeout`.
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str | None = None,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        max_inflight: int | None = None,
    ) -> None:
        broker = parse_mqtt_url(url)
        self.timeout = timeout
        self._sent: list[tuple[str, mqtt.MQTTMessageInfo]] = []
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-pub-{os.getpid()}-{time.monotonic_ns()}",
            protocol=protocol,
        )
        if max_inflight is not None:  # paho's default of 20 would pace a flood
            self.client.max_inflight_messages_set(max_inflight)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: Payload, qos: int = 1) -> None:
        """Publish one message and wait for the broker's acknowledgement."""
        self.publish_many([(topic, payload)], qos=qos)

    def publish_many(self, messages: Iterable[tuple[str, Payload]], qos: int = 1) -> int:
        """Publish all (in order, pipelined), wait for every acknowledgement; return the count."""
        self.send(messages, qos=qos)
        return self.wait()

    def send(self, messages: Iterable[tuple[str, Payload]], qos: int = 1) -> None:
        """Publish all (in order, pipelined) without waiting: `wait()` collects the PUBACKs."""
        for topic, payload in messages:
            info = self.client.publish(topic, _encode(payload), qos=qos)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"{topic}: {mqtt.error_string(info.rc)}"
            self._sent.append((topic, info))

    def wait(self) -> int:
        """Wait until the broker acknowledged everything sent; return how many that was."""
        deadline = time.monotonic() + self.timeout
        for topic, info in self._sent:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published(), f"no PUBACK for {topic} within {self.timeout} s"
        count = len(self._sent)
        self._sent.clear()
        return count


def publish(url: str, messages: Iterable[tuple[str, Payload]], **options: Any) -> int:
    """Connect, publish every message at QoS 1, wait for every PUBACK, disconnect."""
    with Publisher(url, **options) as publisher:
        return publisher.publish_many(messages)
