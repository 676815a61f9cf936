"""/healthz tells the truth about sinks: one that refused entries (a 4xx, set aside) is not ok,
and the gateway is degraded, with the count and the reason, for a day after the last refusal; a
VictoriaMetrics that does not deduplicate (a point written twice is two samples) is not ok either."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from edge.agent import Agent, AgentConfig
from edge.agent.assembly import SET_ASIDE_DEGRADES_S
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry
from edge.errors import SinkRejected
from edge.ingest import parse_mqtt_url
from edge.model import RawMessage, Reading
from edge.sinks import InfluxSink
from edge.sinks.memory import MemorySink
from gateway.api import create_app
from tests.servers import VictoriaMetricsServer

PROFILES = ProfileRegistry.load(default_profile_dir())
DOOR = "ce/c1/b1/zigbee-door-contact/{}"


class PickySink(MemorySink):
    """A time-series store that answers 400 for one device's points (a field type conflict)."""

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        if any(r.device.device_id == "door-bad" for r in readings):
            raise SinkRejected("400 Bad Request: field type conflict: battery is string")
        await super().write_readings(readings)


async def test_a_sink_that_set_entries_aside_makes_healthz_degraded_with_the_reason(
    tmp_path: Path,
) -> None:
    clock = FakeClock(datetime(2026, 12, 6, 8, 0, tzinfo=UTC))
    sink = PickySink("tsdb", frozenset({"readings"}))
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    agent = Agent(config, PROFILES, DeviceRegistry(), [sink], clock)
    async with agent:
        agent.lanes[0].session.status.connected = True  # as if the broker were there
        agent.lanes[1].session.status.connected = True
        app = create_app(agent, "token", None)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:

            async def health() -> dict[str, object]:
                # the details are an admin's (#20): the bootstrap token here
                response = await client.get("/healthz", headers={"Authorization": "Bearer token"})
                body: dict[str, object] = response.json()
                return body

            for device in ("door-1", "door-bad", "door-2"):
                raw = RawMessage(
                    topic=DOOR.format(device), payload=b'{"contact": true}', received_at=clock.now()
                )
                out = agent.pipeline.handle(raw)
                assert out.reading is not None
                await agent.outbox.commit([out.reading])
            assert (await health())["status"] == "ok"  # nothing delivered yet, nothing refused
            for forwarder in agent.forwarders:
                await forwarder.drain()
            assert [r.device.device_id for r in sink.readings] == ["door-1", "door-2"]

            body = await health()
            assert body["status"] == "degraded"
            tsdb = body["sinks"]["tsdb"]  # type: ignore[index]
            assert tsdb["ok"] is False
            assert tsdb["set_aside"] == (
                "1 readings entries refused and set aside in the last 24 h; the latest at "
                "2026-12-06 08:00:00 UTC: 400 Bad Request: field type conflict: battery is string"
            )
            assert body["sinks"]["alert-store"]["set_aside"] is None  # type: ignore[index]

            clock.advance(SET_ASIDE_DEGRADES_S - 1)
            assert (await health())["status"] == "degraded"
            clock.advance(1)  # a day after the refusal
            assert (await health())["status"] == "ok"


async def test_victoria_metrics_without_deduplication_makes_healthz_degraded(
    tmp_path: Path,
) -> None:
    server = VictoriaMetricsServer(dedup=None)  # VictoriaMetrics' default
    server.start()
    clock = FakeClock(datetime(2026, 12, 6, 8, 0, tzinfo=UTC))
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    tsdb = InfluxSink(server.url, org="o", bucket="b", token=None)
    try:
        async with Agent(config, PROFILES, DeviceRegistry(), [tsdb], clock) as agent:
            for lane in agent.lanes:
                lane.session.status.connected = True  # as if the broker were there
            raw = RawMessage(
                topic=DOOR.format("door-1"), payload=b'{"contact": true}', received_at=clock.now()
            )
            out = agent.pipeline.handle(raw)
            assert out.reading is not None
            await agent.outbox.commit([out.reading])
            for forwarder in agent.forwarders:
                await forwarder.drain()
            health = await agent.health()
    finally:
        server.stop()
    assert health["sinks"]["tsdb"]["ok"] is False
    assert "runs without -dedup.minScrapeInterval" in health["sinks"]["tsdb"]["store_problem"]
    assert health["sinks"]["alert-store"]["store_problem"] is None
