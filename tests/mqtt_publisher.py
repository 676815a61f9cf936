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

from simulators.load import parse_mqtt_url

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
    ) -> None:
        host, port = parse_mqtt_url(url)
        self.timeout = timeout
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-pub-{os.getpid()}-{time.monotonic_ns()}",
            protocol=protocol,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.connect(host, port)
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
        sent = [
            (topic, self.client.publish(topic, _encode(payload), qos=qos))
            for topic, payload in messages
        ]
        for topic, info in sent:
            info.wait_for_publish(self.timeout)
            assert info.is_published(), f"no PUBACK for {topic} within {self.timeout} s"
        return len(sent)


def publish(url: str, messages: Iterable[tuple[str, Payload]], **options: Any) -> int:
    """Connect, publish every message at QoS 1, wait for every PUBACK, disconnect."""
    with Publisher(url, **options) as publisher:
        return publisher.publish_many(messages)
