"""Rule state survives an agent restart: a suspicion pending before the stop raises after it,
once, and a count window keeps its hits."""

from __future__ import annotations

from pathlib import Path

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from edge.model import AlertEvent, RawMessage
from edge.sinks import ReadingStore

PROFILES = ProfileRegistry.load(default_profile_dir())
RADAR = "ce/c1/b1/tuya-fall-radar/rad-1"
GATE = "ce/c1/b1/hikvision-access-controller/acc-1"


def _agent(tmp_path: Path, clock: FakeClock) -> Agent:
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw-1", data_dir=tmp_path / "data"
    )
    return Agent(
        config, PROFILES, DeviceRegistry(), [ReadingStore(tmp_path / "readings.db")], clock
    )


async def _publish(agent: Agent, topic: str, payload: bytes) -> list[AlertEvent]:
    raw = RawMessage(topic=topic, payload=payload, received_at=agent.clock.now())
    out = agent.pipeline.handle(raw)
    await agent.outbox.commit([out.reading] if out.reading else [], out.events)
    return out.events


def _denied(serial: int) -> bytes:
    return (
        b'{"eventType": "AccessControllerEvent", "AccessControllerEvent": '
        b'{"majorEventType": 5, "subEventType": 6, "doorNo": 1, "serialNo": %d}}' % serial
    )


async def test_a_pending_fall_and_a_count_window_survive_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    async with _agent(tmp_path, clock) as agent:
        opened = await _publish(agent, RADAR, b'{"fall_down_status": "maybe_fall"}')
        assert [e.alert.rule for e in opened] == ["possible-fall"]
        for serial in range(4):
            assert await _publish(agent, GATE, _denied(serial)) == []
        clock.advance(10)
        assert await agent.ticker.tick() == []  # saves the state
    assert (tmp_path / "data" / "rules.db").stat().st_mode & 0o777 == 0o600

    clock.advance(20)  # the gateway was down for a while
    async with _agent(tmp_path, clock) as agent:
        fifth = await _publish(agent, GATE, _denied(4))
        assert [(e.kind, e.alert.rule) for e in fifth] == [("opened", "denied-swipes")]
        assert await agent.ticker.tick() == []  # 30 s after the suspicion: not yet
        clock.advance(30)
        raised = await agent.ticker.tick()
        # the fall supersedes the possible fall: it opens, and the possible fall is closed (#14)
        assert [(e.kind, e.alert.rule, e.alert.severity) for e in raised] == [
            ("opened", "fall", "critical"),
            ("resolved", "possible-fall", "major"),
        ]
        clock.advance(60)
        assert await agent.ticker.tick() == []
    async with _agent(tmp_path, clock) as agent:  # and not raised again by a third start
        clock.advance(60)
        assert await agent.ticker.tick() == []
        assert sorted(a.rule for a in agent.alerts.open_alerts()) == ["denied-swipes", "fall"]


async def test_the_away_flag_is_set_through_the_api_and_kept(tmp_path: Path) -> None:
    import httpx

    from gateway.api import create_app

    clock = FakeClock()
    async with _agent(tmp_path, clock) as agent:
        app = create_app(agent, "t")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api"
        ) as client:
            url = "/v1/households/c1/b2/1201/away"
            response = await client.put(
                url, json={"away": True}, headers={"Authorization": "Bearer t"}
            )
            assert (response.status_code, response.json()["away"]) == (200, True)
            refused = await client.put(url, json={"away": True})
            assert refused.status_code == 401
    async with _agent(tmp_path, clock) as agent:
        assert agent.pipeline.rules.is_away("c1", "b2", "1201")
        assert not agent.pipeline.rules.is_away("c1", "b2", "1202")
