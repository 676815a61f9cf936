"""Where the outbox delivers: the Sink protocol that every destination implements.

A sink must be idempotent: the outbox delivers at least once, so the same alert event (same id) or
the same reading (same device, same timestamp) may arrive twice and must be stored once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from edge.errors import SinkNameTaken
from edge.model import AlertEvent, Lane, Reading


class Sink(Protocol):
    """A destination for outbox entries.

    `write_*` raises `SinkUnavailable` when the batch should be retried later (network, 5xx,
    timeout) and `SinkRejected` when the batch is invalid (4xx) and retrying cannot help.
    """

    name: str
    lanes: frozenset[Lane]

    async def write_events(self, events: Sequence[AlertEvent]) -> None: ...

    async def write_readings(self, readings: Sequence[Reading]) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class StoredReadingSink(Protocol):
    """A sink of readings that takes them as the outbox stores them, one row each
    (`edge.outbox.rows.read_row` reads a row's parts): the forwarder then builds no `Reading`
    to hand it (4 us each, most of reading 2,000 rows back), and what the sink parses lives and
    dies on its own thread, off the event loop. Rejections and idempotence as in `Sink`.
    """

    async def write_stored_readings(self, rows: Sequence[bytes]) -> None: ...


def check_sink_names(owners: Iterable[tuple[str, str]]) -> None:
    """Refuse a sink name given twice; `owners` is (sink name, who configured it) in order.

    A sink's name keys its delivery cursors in the outbox: two sinks sharing one would each take
    the other's deliveries as their own, and every entry would reach only one of them.

    Raises:
        SinkNameTaken: naming the name and both owners, in one line.
    """
    seen: dict[str, str] = {}
    for name, owner in owners:
        if name in seen:
            raise SinkNameTaken(
                f"two sinks are named {name!r}: {seen[name]} and {owner}; a sink's name keys its "
                "delivery cursor in the outbox, so each sink needs a name of its own"
            )
        seen[name] = owner
