"""Request limits: the body size cap and the brake on repeated authentication failures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from gateway.limits import AuthFailureLimiter, BodySizeLimit


def _app(max_bytes: int) -> httpx.AsyncClient:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    transport = httpx.ASGITransport(app=BodySizeLimit(app, max_bytes=max_bytes))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_a_body_within_the_cap_passes() -> None:
    async with _app(100) as client:
        response = await client.post("/echo", content=b"x" * 100)
    assert (response.status_code, response.json()) == (200, {"bytes": 100})


async def test_a_declared_body_over_the_cap_is_413_in_the_error_envelope() -> None:
    async with _app(100) as client:
        response = await client.post("/echo", content=b"x" * 101)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_a_streamed_body_over_the_cap_is_413() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 40

    async with _app(100) as client:
        response = await client.post("/echo", content=chunks())  # no Content-Length
    assert response.status_code == 413


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_braked_after_its_failures_and_released_by_the_window() -> None:
    clock = _Clock()
    limiter = AuthFailureLimiter(max_failures=3, window_s=60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") is None
        limiter.failed("10.0.0.1")
        clock.now += 1

    assert limiter.retry_after("10.0.0.1") == pytest.approx(57)
    assert limiter.retry_after("10.0.0.2") is None  # others are not affected
    clock.now = 60.5  # the first failure has left the window
    assert limiter.retry_after("10.0.0.1") is None
    assert limiter.refused == 1


def test_the_limiter_tracks_a_bounded_number_of_addresses() -> None:
    limiter = AuthFailureLimiter(max_failures=1, max_clients=2, clock=_Clock())
    for client in ("a", "b", "c"):
        limiter.failed(client)
    assert limiter.retry_after("a") is None  # forgotten to make room
    assert limiter.retry_after("c") is not None
