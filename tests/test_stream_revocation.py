"""#20 finding 4: a live stream (/v1/alerts/stream) open on a token that is then revoked or expires
ends within seconds, over a real uvicorn socket; no event reaches it after that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from edge.model import AlertEvent, RawMessage
from edge.sinks import ReadingStore
from gateway.api import create_app
from gateway.tokens import TokenStore
from tests.api_server import served

PROFILES = ProfileRegistry.load(default_profile_dir())
SOS = b'{"action": "emergency", "battery": 80}'


@dataclass
class _Stream:
    agent: Agent
    clock: FakeClock
    tokens: TokenStore
    url: str
    now: list[datetime]  # what the token store takes for now (expiry)

    async def sos(self, device: str) -> AlertEvent:
        self.clock.advance(1)
        out = self.agent.pipeline.handle(
            RawMessage(
                topic=f"ce/a/a1/tuya-sos-button/{device}", payload=SOS, received_at=self.clock.now()
            )
        )
        await self.agent.outbox.commit([out.reading] if out.reading else [], out.events)
        for forwarder in self.agent.forwarders:
            await forwarder.drain()
        return out.events[0]


@pytest.fixture
async def stream(tmp_path: Path) -> AsyncIterator[_Stream]:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    readings = ReadingStore(tmp_path / "readings.db")
    agent = Agent(config, PROFILES, DeviceRegistry(), [readings], clock)
    now = [datetime.now(UTC)]
    tokens = TokenStore(tmp_path / "tokens.db", now=lambda: now[0])
    async with agent:
        app = create_app(agent, "bootstrap", readings, tokens=tokens)
        async with served(app) as url:
            yield _Stream(agent, clock, tokens, url, now)
        agent.stream.close()


async def _until(predicate: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Poll a condition (the stream is read by another task) until it holds."""
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what} not within {within} s")


async def _read_until_end(response: httpx.Response, seen: list[str]) -> None:
    async for line in response.aiter_lines():
        seen.append(line)


async def _stream_ends_after(
    world: _Stream, token: str, end: Callable[[], None]
) -> tuple[list[str], float]:
    """Open a stream on `token`, see one event arrive, call `end()`, then time the stream's end."""
    seen: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=world.url, timeout=30) as client,
        client.stream("GET", "/v1/alerts/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        reader = asyncio.create_task(_read_until_end(response, seen))
        await _until(lambda: len(world.agent.stream) == 1, "subscribed")
        before = await world.sos("sos-before")
        await _until(lambda: f"id: {before.id}" in seen, "the first event streamed")
        end()
        ended_at = time.monotonic()
        await asyncio.wait_for(reader, timeout=30)  # on the old code the stream never ends
        took = time.monotonic() - ended_at
    # after the stream ended, events are stored as usual and reach nobody on the old token
    await world.sos("sos-after")
    return seen, took


async def test_revoking_a_token_ends_its_open_stream_within_seconds(stream: _Stream) -> None:
    token_id, token = stream.tokens.create("duty_officer", ["a"])

    seen, took = await _stream_ends_after(stream, token, lambda: stream.tokens.revoke(token_id))

    assert took < 15.0, f"the stream ran {took:.1f} s after revocation"
    assert seen[-3:] == ["event: revoked", "data: {}", ""]
    assert len(stream.agent.stream) == 0  # unsubscribed: no queue fills for a gone reader
    # a new stream on the revoked token is refused
    async with httpx.AsyncClient(base_url=stream.url) as client:
        again = await client.get("/v1/alerts/stream", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401


async def test_a_token_expiring_ends_its_open_stream_within_seconds(stream: _Stream) -> None:
    _, token = stream.tokens.create("property_manager", ["a"], valid_for=timedelta(hours=8))

    def expire() -> None:
        stream.now[0] += timedelta(hours=8, seconds=1)

    seen, took = await _stream_ends_after(stream, token, expire)

    assert took < 15.0, f"the stream ran {took:.1f} s after expiry"
    assert seen[-3:] == ["event: revoked", "data: {}", ""]


async def test_a_stream_on_a_valid_token_stays_open_past_the_recheck(stream: _Stream) -> None:
    _, token = stream.tokens.create("duty_officer", ["a"])
    seen: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=stream.url, timeout=30) as client,
        client.stream("GET", "/v1/alerts/stream", headers=headers) as response,
    ):
        reader = asyncio.create_task(_read_until_end(response, seen))
        await _until(lambda: len(stream.agent.stream) == 1, "subscribed")
        await asyncio.sleep(2.5)  # the duration is the point: past two rechecks (one a second)
        event = await stream.sos("sos-later")
        await _until(lambda: f"id: {event.id}" in seen, "the later event streamed")
        assert not reader.done()
        reader.cancel()
    assert "event: revoked" not in seen
