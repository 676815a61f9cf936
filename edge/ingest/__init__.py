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

__all__ = [
    "RECEIVE_MAXIMUM",
    "BrokerAddress",
    "Delivery",
    "IngestLane",
    "MqttSession",
    "TlsConfig",
    "parse_mqtt_url",
]
