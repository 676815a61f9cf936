"""Outbox: the durable on-disk outbox (SQLite WAL, a cursor per sink), the forwarders that drain
it, and the Sink protocol every destination implements.
"""

from edge.outbox.forwarder import Forwarder
from edge.outbox.outbox import OUTBOX_MAX_BYTES, Outbox
from edge.outbox.rows import DeviceParts, ReadingRow, read_row
from edge.outbox.sink import Sink, StoredReadingSink, check_sink_names

__all__ = [
    "OUTBOX_MAX_BYTES",
    "DeviceParts",
    "Forwarder",
    "Outbox",
    "ReadingRow",
    "Sink",
    "StoredReadingSink",
    "check_sink_names",
    "read_row",
]
