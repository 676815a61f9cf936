"""Ingest: the MQTT session (QoS 1, persistent session, acknowledged after commit) and the
alarm and telemetry lanes that feed the pipeline.
"""

from edge.ingest.broker import BrokerAddress, TlsConfig, parse_mqtt_url
from edge.ingest.lane import IngestLane
from edge.ingest.session import RECEIVE_MAXIMUM, Delivery, MqttSession

__all__ = [
    "RECEIVE_MAXIMUM",
    "BrokerAddress",
    "Delivery",
    "IngestLane",
    "MqttSession",
    "TlsConfig",
    "parse_mqtt_url",
]
