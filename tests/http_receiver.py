"""The one local HTTP server of the tests: http.server on 127.0.0.1 in a thread.

The stand-in receivers (webhook, WeCom and DingTalk robots, SMS and voice providers, stub stores)
start, close and run as context managers through it, and only say how they answer: a request
handler, and a state object it reaches with `state_of`.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Generic, Self, TypeVar, cast

S = TypeVar("S")


class _Server(ThreadingHTTPServer, Generic[S]):
    daemon_threads = True  # a handler still writing to a client that left does not block close

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], state: S) -> None:
        self.state = state
        super().__init__(("127.0.0.1", port), handler)


class HttpReceiver(Generic[S]):
    """`handler` served on 127.0.0.1 in a thread, its requests sharing `state`.

    Args:
        port: 0 for any free port; a chosen one to start late where a client already sends.
        name: the serving thread's name, for a stack dump of a hung test.
    """

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        state: S,
        *,
        port: int = 0,
        name: str = "http-receiver",
    ) -> None:
        self._handler = handler
        self._state = state
        self._name = name
        self.port = port
        self._server: _Server[S] | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server = _Server(self.port, self._handler, self._state)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=self._name, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and free the port; a receiver never started or already closed: nothing."""
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def state_of(handler: BaseHTTPRequestHandler, kind: type[S]) -> S:
    """The state of the receiver that serves `handler`'s request."""
    state = cast(_Server[object], handler.server).state
    assert isinstance(state, kind), f"{type(handler).__name__} served with {type(state)}"
    return state
