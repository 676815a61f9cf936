"""Channel: a notification sink behind a route, which records every attempt in the delivery log.

A channel is its own outbox sink (its own cursor), so one that fails holds up no other. Events with
`notify=False` (silenced, flapping, a drill) and events its route does not match are skipped:
recorded as such, never sent, and they count as skipped, not delivered. Events the channel has
already delivered or skipped in this process are not sent again when the forwarder retries a batch
that failed part-way (a digest sent, the next one refused): at least once, but no more than needed.

Rules of reach: a call to action (opened, escalated, repeated) about an alert that someone has
acknowledged since, or whose incident someone has, or that is resolved, is not sent (`handled`,
answered by the alert book): whoever took it stops every queued message about it at once. The
people an event addresses pass `PersonRate` (one summary instead of a flood); a channel that only
reaches people (`personal`: SMS, voice) skips an event that is left addressing nobody. For such a
channel an event whose step named nobody addresses the channel's own `Audience` (its configured
people, whoever is on duty), so those people are rate-limited too: a flood of tier-step alarms
rings one phone at most `limit` times and then once with a summary.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from edge.errors import SinkError, SinkRejected
from edge.model import AlertEvent, AlertEventKind, Lane, Reading
from edge.outbox import Sink
from edge.sinks.channels.addressing import Audience
from edge.sinks.channels.delivery_log import DeliveryLog, DeliveryResult
from edge.sinks.channels.person_rate import Admission, PersonRate, ReachSummary
from edge.sinks.channels.route import Route

_log = logging.getLogger(__name__)

REMEMBERED = 50_000  # event ids done in this process: a retry after a partial batch skips them
_CALLS = (AlertEventKind.OPENED, AlertEventKind.ESCALATED, AlertEventKind.REPEATED)


@runtime_checkable
class Summarising(Protocol):
    """A sink that can send one person one summary in place of a flood of messages."""

    async def write_summary(self, summary: ReachSummary) -> None: ...


class Channel:
    """Sends the events `route` takes to `sink`; records each attempt in `log`.

    Args:
        route: None sends every event, `notify` or not (the generic `webhooks:` form: a
            platform's feed of every transition).
    """

    lanes: frozenset[Lane] = frozenset({"events"})

    def __init__(
        self,
        sink: Sink,
        route: Route | None,
        log: DeliveryLog | None,
        *,
        person_rate: PersonRate | None = None,
        handled: Callable[[AlertEvent], str | None] | None = None,
        audience: Audience | None = None,
    ) -> None:
        self.name = sink.name
        self.sink = sink
        self.route = route
        self._log = log
        self._rate = person_rate
        self._handled = handled
        self.personal = bool(getattr(sink, "personal", False))  # reaches people only
        # whom a call to action addresses when its step named nobody (a phone channel's own
        # people): they pass the per-person rate like the people a step names
        self._audience: Audience | None = (
            audience if audience is not None else getattr(sink, "audience", None)
        )
        self._done: OrderedDict[str, None] = OrderedDict()
        self._admitted: OrderedDict[str, AlertEvent] = OrderedDict()  # decided once per event
        self._summaries: list[ReachSummary] = []  # to send (kept across a failed attempt)
        self.sent = 0  # events the sink accepted
        self.skipped = 0  # events not for this channel
        self.summaries_sent = 0
        self.failing: str | None = None  # the last attempt's error, None once one succeeds

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
                event, reason = self._addressed(event)
            if reason is None:
                send.append(event)
            else:
                skip.setdefault(reason, []).append(event)
        for reason, skipped in skip.items():
            await self._record(skipped, DeliveryResult.SKIPPED, reason)
            self._remember(skipped)
            self.skipped += len(skipped)
        if not send:
            await self._summarise()
            return
        try:
            await self.sink.write_events(send)
        except SinkError as exc:
            if not isinstance(exc, SinkRejected):  # a refused message is that message's fault
                self.failing = str(exc)
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
        self.failing = None
        await self._record(send, DeliveryResult.DELIVERED)
        self._remember(send)
        self.sent += len(send)
        await self._summarise()

    async def close(self) -> None:
        await self.sink.close()

    def refusal(self, event: AlertEvent) -> str | None:
        """Why this channel would not send `event` (route, notify off); None if it would."""
        return self._refusal(event)

    def _refusal(self, event: AlertEvent) -> str | None:
        if self.route is None:
            return None
        if not event.notify:
            return "notify off (silenced, flapping or a drill)"
        mismatch = self.route.mismatch(event)
        if mismatch is not None:
            return f"route: {mismatch}"
        if self._handled is not None and event.kind in _CALLS:
            taken = self._handled(event)
            if taken is not None:
                return f"not sent: {taken}"
        return None

    def _addressed(self, event: AlertEvent) -> tuple[AlertEvent, str | None]:
        """The event with the people the per-person rate lets it address; a reason to skip it
        when a personal channel is left addressing nobody. Decided once per event."""
        if self._rate is None or self.route is None:
            return event, None
        decided = self._admitted.get(event.id)
        if decided is None and not event.people:
            if self._audience is None or event.kind not in _CALLS:
                return event, None
            event = event.model_copy(update={"people": tuple(self._audience.people(event))})
            if not event.people:
                return event, None  # nobody to count: the sink says whom it reached (nobody)
        if decided is None:
            kept: list[str] = []
            for person in event.people:
                admission, summary = self._rate.admit(person)
                if admission is Admission.SEND:
                    kept.append(person)
                elif summary is not None:
                    self._summaries.append(summary)
            decided = event.model_copy(update={"people": tuple(kept)})
            self._admitted[event.id] = decided
            while len(self._admitted) > REMEMBERED:
                self._admitted.popitem(last=False)
        if self.personal and not decided.people:
            held = ", ".join(event.people)
            return decided, f"rate limit per person ({held}): in a summary instead"
        return decided, None

    async def _summarise(self) -> None:
        """Send the summaries due; one that fails stays for the next batch (events never wait)."""
        if not self._summaries or not isinstance(self.sink, Summarising):
            self._summaries.clear()
            return
        while self._summaries:
            summary = self._summaries[0]
            try:
                await self.sink.write_summary(summary)
            except SinkError as exc:
                _log.warning("channel %s: a summary not sent yet: %s", self.name, exc)
                return
            self._summaries.pop(0)
            self.summaries_sent += 1
            who = "a family contact" if summary.person.startswith("family:") else summary.person
            _log.info(
                "channel %s: %d alerts for %s summarised; single messages resume at %s",
                self.name,
                summary.alerts,
                who,
                summary.until.isoformat(),
            )

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
