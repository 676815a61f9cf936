"""Ingest: the MQTT session (QoS 1, persistent session, acknowledged after commit) and the
alarm and telemetry lanes that feed the pipeline.
"""

from edge.ingest.lane import IngestLane
from edge.ingest.session import (
    RECEIVE_MAXIMUM,
    BrokerAddress,
    Delivery,
    MqttSession,
    TlsConfig,
    parse_mqtt_url,
)

# sorted plainly, as tests/test_layout.py checks (ruff's isort-style order puts constants first)
__all__ = [  # noqa: RUF022
    "BrokerAddress",
    "Delivery",
    "IngestLane",
    "MqttSession",
    "RECEIVE_MAXIMUM",
    "TlsConfig",
    "parse_mqtt_url",
]
