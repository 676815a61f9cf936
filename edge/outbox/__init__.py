"""Outbox: the durable on-disk outbox (SQLite WAL, a cursor per sink), the forwarders that drain
it, and the Sink protocol every destination implements.
"""

from edge.outbox.forwarder import Forwarder
from edge.outbox.outbox import Outbox
from edge.outbox.sink import Sink, SinkNameTaken, check_sink_names

__all__ = [
    "Forwarder",
    "Outbox",
    "Sink",
    "SinkNameTaken",
    "check_sink_names",
]
