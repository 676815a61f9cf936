"""Group robots (WeCom, DingTalk): alert events as chat messages, paced under the robot's rate limit.

Both vendors allow a robot 20 messages a minute. `RateWindow` keeps sends under that in any 60 s
(a sliding window, each send counted from when it ended, so none reaches the robot early). A batch the window can take as it stands goes as one message per event; a
batch larger than what the window has left (the channel is behind: a burst, or an outage just
over) is packed into digests, several events per message up to the vendor's size limit, and those
are paced: the forwarder of this channel waits for a free slot, no other channel does. When the
robot answers "too fast" anyway (another sender shares it), the window pauses for a minute and the
batch is retried. Every event still reaches the group: a digest lists each one.

Answers (HTTP 200 with `{"errcode": 0, "errmsg": "ok"}` is success): a known rate-limit code,
5xx, timeouts, connection errors and any unknown errcode are `SinkUnavailable` (retried); a wrong
key, token or signature is retried too (a configuration fault must not drop alerts; the channel
shows as failing until it is fixed); only the vendor's codes for an invalid message are
`SinkRejected`. Error messages never show the key, token or secret.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

import httpx
import orjson

from edge.clock import Clock, SystemClock
from edge.errors import SinkRejected, SinkUnavailable
from edge.model import AlertEvent, Lane, Reading
from edge.sinks.channels.message import Notice, NoticeFormat
from edge.sinks.channels.person_rate import ReachSummary
from edge.sinks.refusal import HTTP_TIMEOUT_S, refusal

_log = logging.getLogger(__name__)

RATE_LIMIT_PAUSE_S = 60.0  # after the robot said "too fast": both vendors count per minute
_ERROR_BODY_CHARS = 200


class RateWindow:
    """At most `limit` sends in any `period_s` seconds of the clock's monotonic time."""

    def __init__(
        self,
        limit: int,
        period_s: float,
        clock: Clock,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("a rate window needs a limit of at least 1")
        self.limit = limit
        self.period_s = period_s
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._paused_until = float("-inf")
        self.waited_s = 0.0  # time spent waiting for a slot: how far behind the channel was

    def available(self) -> int:
        """Sends allowed right now."""
        now = self._clock.monotonic()
        if now < self._paused_until:
            return 0
        self._expire(now)
        return self.limit - len(self._sent)

    async def acquire(self) -> None:
        """Wait for a free slot, then take it; call `finished` when its send is over."""
        while True:
            now = self._clock.monotonic()
            self._expire(now)
            if now < self._paused_until:
                wait = self._paused_until - now
            elif len(self._sent) < self.limit:
                self._sent.append(now)
                return
            else:
                wait = self._sent[0] + self.period_s - now
            self.waited_s += wait
            await self._sleep(wait)

    def finished(self) -> None:
        """The send in the slot taken last is over: the slot counts from now.

        The vendor counts a message when it arrives, which a slow send delays (an event loop
        busy with a flood took 2.7 s); counted from the end of the send, the `limit`-th send
        after it cannot reach the robot within `period_s` of it. A channel sends one message at
        a time (one forwarder per channel), so the slot taken last is this send's.
        """
        if self._sent:
            self._sent[-1] = max(self._sent[-1], self._clock.monotonic())

    def pause(self, seconds: float) -> None:
        """Take nothing for `seconds` (the receiver said we are too fast)."""
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] + self.period_s <= now:
            self._sent.popleft()


class RobotSink(ABC):
    """Sends alert events to one group robot; readings are not its business."""

    lanes: frozenset[Lane] = frozenset({"events"})
    vendor: ClassVar[str]
    max_bytes: int  # of the message text, as the vendor counts it (UTF-8)
    rate_limited: ClassVar[frozenset[int]]  # errcodes that mean "too fast"
    invalid_message: ClassVar[frozenset[int]]  # errcodes that mean "this message can never pass"

    def __init__(
        self,
        name: str,
        url: str,
        query: Mapping[str, str],
        *,
        notices: NoticeFormat,
        rate: RateWindow,
        secrets: Sequence[str],
        timeout_s: float = HTTP_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self._url = url  # without a query: httpx would replace it with `params`
        self._query = dict(query)  # the credential (key or access token)
        self._notices = notices
        self.rate = rate
        self._secrets = [s for s in secrets if s]
        self._clock = clock or SystemClock()
        self.messages = 0  # messages the robot accepted
        self.digests = 0  # of which digests of several events
        # Redirects are not followed: a POST must not silently go elsewhere.
        self._client: httpx.AsyncClient | None = httpx.AsyncClient(
            timeout=timeout_s, follow_redirects=False
        )

    @abstractmethod
    def body(self, notice: Notice) -> dict[str, Any]:
        """The vendor's JSON message for one notice, within `max_bytes`."""

    @abstractmethod
    def content(self, notice: Notice) -> str:
        """The text of the message that the vendor's size limit applies to."""

    def params(self) -> Mapping[str, str]:
        """Query parameters added to the URL of each request (a signature)."""
        return {}

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        return None

    async def write_events(self, events: Sequence[AlertEvent]) -> None:
        if not events:
            return
        if len(events) <= max(self.rate.available(), 1):
            messages = [([e], self._notices.single(e)) for e in events]
        else:  # behind: pack into digests instead of queueing one message per event
            messages = self._notices.digests(events, self._fits)
        done: list[str] = []
        for group, notice in messages:
            await self.rate.acquire()
            try:
                await self._send(notice)
            except (SinkUnavailable, SinkRejected) as exc:
                if not done:
                    raise
                raise type(exc)(str(exc), delivered=tuple(done)) from exc
            finally:
                self.rate.finished()
            done.extend(e.id for e in group)
            self.messages += 1
            self.digests += len(group) > 1
        _log.debug("%s %s took %d alert events", self.vendor, self.name, len(events))

    async def write_summary(self, summary: ReachSummary) -> None:
        """One message to the group that mentions the person: a summary instead of a flood."""
        await self.rate.acquire()
        try:
            await self._send(self._notices.summary(summary))
        finally:
            self.rate.finished()
        self.messages += 1

    async def close(self) -> None:
        if self._client is None:
            return
        client, self._client = self._client, None
        await client.aclose()

    def limit(self, notice: Notice) -> int:
        """The vendor's size limit for this notice's message type."""
        return self.max_bytes

    def _fits(self, notice: Notice) -> bool:
        return len(self.content(notice).encode()) <= self.limit(notice)

    async def _send(self, notice: Notice) -> None:
        if self._client is None:
            raise RuntimeError(f"{self.vendor} robot {self.name} is closed")
        body = orjson.dumps(self.body(notice))
        try:
            response = await self._client.post(
                self._url,
                params={**self._query, **self.params()},
                content=body,
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
        except httpx.HTTPError as exc:  # connection refused or reset, timeouts, TLS, protocol
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise SinkUnavailable(self._redact(f"{self._where} unreachable: {detail}")) from exc
        excerpt = " ".join(response.text[:_ERROR_BODY_CHARS].split())
        if not response.is_success:
            message = self._redact(
                f"{self._where} answered {response.status_code} {response.reason_phrase}: {excerpt}"
            )
            raise refusal(response.status_code, message)
        try:
            answer = orjson.loads(response.content)
            code = int(answer["errcode"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SinkUnavailable(
                self._redact(f"{self._where} answered without an errcode: {excerpt}")
            ) from exc
        if code == 0:
            return
        message = self._redact(f"{self._where} answered errcode {code}: {answer.get('errmsg')}")
        if code in self.rate_limited:
            self.rate.pause(RATE_LIMIT_PAUSE_S)
            raise SinkUnavailable(f"{message} (rate limited: pausing {RATE_LIMIT_PAUSE_S:.0f} s)")
        if code in self.invalid_message:
            raise SinkRejected(message)
        raise SinkUnavailable(message)

    @property
    def _where(self) -> str:
        return f"{self.vendor} robot {self.name}"

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<secret>")
        return text
