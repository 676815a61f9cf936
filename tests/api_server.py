"""An API app served in-process by uvicorn over a real socket on a free port, for the tests that
need what only a server does: a stream that stays open, proxy headers read from the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from gateway.wiring import listen


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # pytest owns the signals


@contextlib.asynccontextmanager
async def served(app: FastAPI, **config: Any) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) with uvicorn `config`; yields the base URL."""
    sock = listen("127.0.0.1", 0)
    server = _Server(
        uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1,
            **config,
        )
    )  # fmt: skip
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):  # a condition, polled: the server says when it is up
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
