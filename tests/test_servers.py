"""Smoke tests of the real test servers that the integration and fault tests stand on."""

from __future__ import annotations

import time

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.servers import (
    MosquittoFactory,
    MosquittoServer,
    ServerNotInstalled,
    VictoriaMetricsFactory,
    VictoriaMetricsServer,
    find_binary,
    mqtt_connack,
)


def _mqtt5_connect(host: str, port: int, timeout_s: float = 5.0) -> ReasonCode:
    """Connect with paho over MQTT 5, return the CONNACK reason code, disconnect cleanly."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    codes: list[ReasonCode] = []
    disconnected: list[bool] = []

    def on_connect(
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        codes.append(reason_code)

    def on_disconnect(
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        disconnected.append(True)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.connect(host, port, keepalive=10)
    deadline = time.monotonic() + timeout_s
    try:
        while not codes and time.monotonic() < deadline:
            client.loop(timeout=0.05)
        assert codes, f"no CONNACK from {host}:{port} within {timeout_s} s"
    finally:
        client.disconnect()
        while not disconnected and time.monotonic() < deadline:
            client.loop(timeout=0.05)
    assert disconnected, "paho did not close the connection"
    return codes[0]


def test_mosquitto_answers_an_mqtt5_connect(mosquitto: MosquittoServer) -> None:
    assert mosquitto.port != 1883
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    code = _mqtt5_connect(mosquitto.host, mosquitto.port)
    assert not code.is_failure, str(code)


def test_topic_prefix_is_the_test_name(topic_prefix: str) -> None:
    assert topic_prefix == "test/test_topic_prefix_is_the_test_name/"


def test_mosquitto_restart_keeps_the_port(mosquitto_factory: MosquittoFactory) -> None:
    server = mosquitto_factory()
    port = server.port
    server.restart()
    assert server.port == port
    assert mqtt_connack(server.host, port, timeout_s=2.0) == 0
    server.kill()
    assert not server.running
    assert mqtt_connack(server.host, port, timeout_s=2.0) is None
    server.start()
    assert server.port == port
    assert not _mqtt5_connect(server.host, port).is_failure


def test_mosquitto_persistence_is_saved_in_its_directory(
    mosquitto_factory: MosquittoFactory,
) -> None:
    server = mosquitto_factory(persistence=True, extra_config=["max_queued_messages 5000"])
    assert "max_queued_messages 5000" in server.config_path.read_text()
    server.stop()
    # As root, mosquitto would switch to the user "mosquitto" and fail to save here.
    assert (server.persistence_dir / "mosquitto.db").is_file(), server.log_tail()
    assert "Error" not in server.log_path.read_text()
    server.start()


def test_victoria_metrics_answers(victoria_metrics: VictoriaMetricsServer) -> None:
    assert victoria_metrics.port != 8428
    with httpx.Client() as client:
        response = client.get(f"{victoria_metrics.url}/health")
    assert response.status_code == 200


def test_victoria_metrics_restart_keeps_port_and_data(
    victoria_metrics_factory: VictoriaMetricsFactory,
) -> None:
    server = victoria_metrics_factory()
    port = server.port
    line = "smoke_test,device_id=d1 value=1.5 1767254400123"
    with httpx.Client() as client:
        for _ in range(2):  # the same point twice: -dedup.minScrapeInterval=1ms keeps one
            response = client.post(f"{server.url}/api/v2/write?precision=ms", content=line)
            assert response.status_code == 204
    assert server.count_samples('{__name__="smoke_test_value"}') == 1
    server.restart()  # SIGTERM: VictoriaMetrics flushes to disk before it exits
    assert server.port == port
    [series] = server.export('{__name__="smoke_test_value"}')
    assert series.labels == {"device_id": "d1"}
    assert series.samples() == [(1767254400123, 1.5)]


def test_victoria_metrics_make_durable_survives_a_kill(
    victoria_metrics_factory: VictoriaMetricsFactory,
) -> None:
    server = victoria_metrics_factory()
    lines = "\n".join(f"durable,device_id=d1 value={i} {1767254400000 + i}" for i in range(100))
    with httpx.Client() as client:
        response = client.post(f"{server.url}/api/v2/write?precision=ms", content=lines)
        assert response.status_code == 204
    server.make_durable()
    server.kill()
    server.start()
    assert server.count_samples('{__name__="durable_value"}') == 100
    assert list((server.data_dir / "snapshots").iterdir()) == []


def test_a_missing_binary_names_its_install_command() -> None:
    with pytest.raises(ServerNotInstalled, match=r"apt-get install no-such-package"):
        find_binary("no-such-binary-for-community-edge", "no-such-package")
