"""Ingest: the MQTT session (QoS 1, persistent session, acknowledged after commit), the
receipts that recognise its resends, and the alarm and telemetry lanes that feed the pipeline.
"""

from edge.ingest.broker import BrokerAddress, TlsConfig, parse_mqtt_url
from edge.ingest.lane import IngestLane
from edge.ingest.receipts import RECEIPT_WINDOW, Receipts
from edge.ingest.session import (
    KEEPALIVE_S,
    RECEIVE_MAXIMUM,
    Delivery,
    MqttProtocol,
    MqttSession,
    SessionStatus,
)

__all__ = [
    "KEEPALIVE_S",
    "RECEIPT_WINDOW",
    "RECEIVE_MAXIMUM",
    "BrokerAddress",
    "Delivery",
    "IngestLane",
    "MqttProtocol",
    "MqttSession",
    "Receipts",
    "SessionStatus",
    "TlsConfig",
    "parse_mqtt_url",
]
