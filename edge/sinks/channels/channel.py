"""Channel: a notification sink behind a route, which records every attempt in the delivery log.

A channel is its own outbox sink (its own cursor), so one that fails holds up no other. Events with
`notify=False` (silenced, flapping, a drill) and events its route does not match are skipped:
recorded as such, never sent, and they count as skipped, not delivered. Events the channel has
already delivered or skipped in this process are not sent again when the forwarder retries a batch
that failed part-way (a digest sent, the next one refused): at least once, but no more than needed.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

from edge.errors import SinkError, SinkRejected
from edge.model import AlertEvent, Lane, Reading
from edge.outbox import Sink
from edge.sinks.channels.delivery_log import DeliveryLog, DeliveryResult
from edge.sinks.channels.route import Route

_log = logging.getLogger(__name__)

REMEMBERED = 50_000  # event ids done in this process: a retry after a partial batch skips them


class Channel:
    """Sends the events `route` takes to `sink`; records each attempt in `log`.

    Args:
        route: None sends every event, `notify` or not (the generic `webhooks:` form: a
            platform's feed of every transition).
    """

    lanes: frozenset[Lane] = frozenset({"events"})

    def __init__(self, sink: Sink, route: Route | None, log: DeliveryLog | None) -> None:
        self.name = sink.name
        self.sink = sink
        self.route = route
        self._log = log
        self._done: OrderedDict[str, None] = OrderedDict()
        self.sent = 0  # events the sink accepted
        self.skipped = 0  # events not for this channel

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        return None

    async def write_events(self, events: Sequence[AlertEvent]) -> None:
        send: list[AlertEvent] = []
        skip: dict[str, list[AlertEvent]] = {}
        for event in events:
            if event.id in self._done:
                continue
            reason = self._refusal(event)
            if reason is None:
                send.append(event)
            else:
                skip.setdefault(reason, []).append(event)
        for reason, skipped in skip.items():
            await self._record(skipped, DeliveryResult.SKIPPED, reason)
            self._remember(skipped)
            self.skipped += len(skipped)
        if not send:
            return
        try:
            await self.sink.write_events(send)
        except SinkError as exc:
            delivered = [e for e in send if e.id in exc.delivered]
            if delivered:
                await self._record(delivered, DeliveryResult.DELIVERED)
                self._remember(delivered)
                self.sent += len(delivered)
            result = (
                DeliveryResult.REJECTED if isinstance(exc, SinkRejected) else DeliveryResult.FAILED
            )
            await self._record([e for e in send if e.id not in exc.delivered], result, str(exc))
            raise
        await self._record(send, DeliveryResult.DELIVERED)
        self._remember(send)
        self.sent += len(send)

    async def close(self) -> None:
        await self.sink.close()

    def _refusal(self, event: AlertEvent) -> str | None:
        if self.route is None:
            return None
        if not event.notify:
            return "notify off (silenced, flapping or a drill)"
        mismatch = self.route.mismatch(event)
        return None if mismatch is None else f"route: {mismatch}"

    async def _record(
        self, events: Sequence[AlertEvent], result: DeliveryResult, reason: str | None = None
    ) -> None:
        if self._log is not None and events:
            await self._log.record(self.name, events, result, reason)

    def _remember(self, events: Sequence[AlertEvent]) -> None:
        for event in events:
            self._done[event.id] = None
        while len(self._done) > REMEMBERED:
            self._done.popitem(last=False)
