"""Request limits of the API: a body size cap, and a brake on repeated authentication failures.

`BodySizeLimit` answers 413 to a request whose body is larger than the cap, whether it declares its
length or streams it. `AuthFailureLimiter` counts failed authentications per key (a client address,
a credential: gateway.auth decides which) in a sliding window; past the limit the key gets 429
(with Retry-After) until the window has room again, so guessing tokens is slow.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024


def _error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over `max_bytes` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await self._refuse(send)
                    return
        seen = 0
        started = False  # the app has begun its answer: too late for a 413
        refused = False  # we answered 413: whatever the app sends after it is dropped

        async def counting_receive() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not started:
                    refused = True
                    await self._refuse(send)
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(_TooLarge):  # answered already
            await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send: Send) -> None:
        body = _error_body(
            "too_large", f"request body over {self.max_bytes} bytes; send smaller batches"
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class AuthFailureLimiter:
    """Failed authentications per key (an address, a credential) in a sliding window; bounded
    memory."""

    def __init__(
        self,
        max_failures: int = 10,
        window_s: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.refused = 0  # requests answered 429

    def retry_after(self, *keys: str) -> float | None:
        """Seconds until every one of `keys` may try again, or None when all may now."""
        waits = [w for w in (self._wait(key) for key in keys) if w is not None]
        if not waits:
            return None
        self.refused += 1
        return max(waits)

    def _wait(self, key: str) -> float | None:
        times = self._failures.get(key)
        if times is None:
            return None
        now = self._clock()
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        if len(times) < self.max_failures:
            return None
        return self.window_s - (now - times[0])

    def failed(self, key: str) -> bool:
        """Count a failure against `key`; True when this one reached the limit (braked now)."""
        times = self._failures.get(key)
        if times is None:
            if len(self._failures) >= self.max_clients:
                self._failures.popitem(last=False)  # forget the longest-tracked key
            times = self._failures[key] = deque(maxlen=self.max_failures)
        else:
            self._failures.move_to_end(key)
        times.append(self._clock())
        return len(times) == self.max_failures
