"""The sign-of-life routes over an agent in process with the shipped rules: a living-alone household
from the register is watched, its learned day is shown (and the read audited), a check-in answered
resolves its no-sign alert, away with an end date is shown and refused in the past."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry, Household
from edge.ingest import parse_mqtt_url
from edge.model import DeviceRef, RawMessage
from edge.rules import default_rules_file, load_rules_file
from gateway.api import create_app
from gateway.audit import AuditLog

PROFILES = ProfileRegistry.load(default_profile_dir())
TOKEN = "token"
START = datetime(2026, 11, 1, 22, 0, tzinfo=UTC)  # 06:00 on 2 November in Asia/Shanghai
HOUSEHOLD = "/v1/households/garden/b1/0801"


class _World:
    def __init__(
        self, agent: Agent, client: httpx.AsyncClient, clock: FakeClock, audit: AuditLog
    ) -> None:
        self.agent, self.client, self.clock, self.audit = agent, client, clock, audit

    async def call(self, method: str, url: str, body: object = None) -> httpx.Response:
        return await self.client.request(
            method, url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )

    async def motion(self) -> None:
        raw = RawMessage(
            topic="ce/garden/b1/zigbee-pir-motion/pir-1",
            payload=b'{"occupancy": true}',
            received_at=self.clock.now(),
        )
        out = self.agent.pipeline.handle(raw)
        await self.agent.outbox.commit([out.reading] if out.reading else [], out.events)

    async def hours(self, hours: float) -> None:
        """Let time pass, the rules ticking at least every half hour (a longer gap would be
        an outage, whose quiet time is not counted)."""
        left = hours * 3600
        while True:
            step = min(left, 1800.0)
            self.clock.advance(step)
            left -= step
            await self.agent.ticker.tick()
            if left <= 0:
                break
        for forwarder in self.agent.forwarders:
            await forwarder.drain()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    clock = FakeClock(START)
    device = DeviceRef("pir-1", "zigbee-pir-motion", "motion", "garden", "b1", "0801", slot=0)
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    rules = load_rules_file(default_rules_file(), PROFILES)
    agent = Agent(
        config, PROFILES, DeviceRegistry({"pir-1": device}), [], clock, community_rules=rules
    )
    async with agent:
        agent.households.put(
            Household(
                community="garden",
                building="b1",
                unit="0801",
                living_alone=True,
                device_ids=("pir-1",),
            ),
            clock.now(),
        )
        agent.care_watch.check()
        audit = AuditLog(tmp_path / "audit.db")
        app = create_app(agent, TOKEN, None, audit=audit)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield _World(agent, client, clock, audit)


async def test_a_quiet_living_alone_home_raises_and_a_check_in_resolves_it(world: _World) -> None:
    await world.hours(0)
    await world.motion()
    await world.hours(4.9)
    assert world.agent.alert_store.open_alerts() == []
    await world.hours(0.2)  # five quiet hours after her 06:00 sign
    [alert] = world.agent.alert_store.open_alerts()
    assert (alert.rule, alert.category, alert.device_id) == (
        "no-sign-of-life",
        "household",
        "household:0801",
    )
    rhythm = await world.call("GET", f"{HOUSEHOLD}/rhythm")
    assert rhythm.status_code == 200, rhythm.text
    body = rhythm.json()
    assert body["away"] is False
    by_rule = {r["rule"]: r for r in body["rules"]}
    assert set(by_rule) == {"no-sign-of-life", "water-idle"}
    assert by_rule["no-sign-of-life"]["raised"] is True
    assert by_rule["no-sign-of-life"]["days_learned"] == 0
    assert by_rule["water-idle"]["watched"] is False  # no water learned yet
    signed = await world.call("POST", f"{HOUSEHOLD}/signs", {"source": "check_in"})
    assert signed.status_code == 200, signed.text
    assert signed.json()["resolved"] == 1
    await world.hours(0)
    assert world.agent.alert_store.open_alerts() == []
    assert len(world.audit.query(action="read_rhythm")) == 1  # when she is home is personal
    assert len(world.audit.query(action="sign_of_life:check_in")) == 1


async def test_away_with_an_end_date_is_shown_and_ends_by_itself(world: _World) -> None:
    until = (START + timedelta(days=3)).isoformat()
    past = await world.call("PUT", f"{HOUSEHOLD}/away", {"away": True, "until": START.isoformat()})
    assert past.status_code == 400
    away = await world.call(
        "PUT", f"{HOUSEHOLD}/away", {"away": True, "until": until, "reason": "住院"}
    )
    assert away.status_code == 200, away.text
    assert away.json() == {"away": True, "until": until.replace("+00:00", "Z"), "reason": "住院"}
    shown = (await world.call("GET", f"{HOUSEHOLD}/rhythm")).json()
    assert (shown["away"], shown["away_reason"]) == (True, "住院")
    for _ in range(3 * 4):
        await world.hours(6)
    assert world.agent.alert_store.open_alerts() == []  # three quiet days away: nothing
    back = (await world.call("GET", f"{HOUSEHOLD}/rhythm")).json()
    assert back["away"] is False


async def test_the_care_report_as_json_csv_and_pdf(world: _World) -> None:
    await world.hours(0)
    await world.motion()
    await world.hours(5.5)  # one no-sign alert in November
    url = "/v1/reports/care/garden?month=2026-11"
    body = (await world.call("GET", url)).json()
    assert (body["households"], body["visited"], body["alerts"]["raised"]) == (1, 0, 1)
    assert body["not_visited"][0].startswith("garden/b1/h-")  # the gateway's admin: masked
    assert body["visit_rate"] == 0.0
    csv = await world.call("GET", f"{url}&format=csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.content.startswith("\ufeff住户".encode())
    pdf = await world.call("GET", f"{url}&format=pdf")
    assert pdf.content.startswith(b"%PDF")
    bad = await world.call("GET", "/v1/reports/care/garden?month=2026-13")
    assert bad.status_code == 422
    assert len(world.audit.query(action="read_report_pdf")) == 1
