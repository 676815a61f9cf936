"""Outbox: the durable on-disk outbox (SQLite WAL, a cursor per sink), the forwarders that drain
it, and the Sink protocol every destination implements.
"""

from edge.outbox.forwarder import Forwarder
from edge.outbox.outbox import OUTBOX_MAX_BYTES, Outbox
from edge.outbox.sink import Sink, SinkNameTaken, check_sink_names

# sorted plainly, as tests/test_layout.py checks (ruff's isort-style order puts constants first)
__all__ = [  # noqa: RUF022
    "Forwarder",
    "OUTBOX_MAX_BYTES",
    "Outbox",
    "Sink",
    "SinkNameTaken",
    "check_sink_names",
]
