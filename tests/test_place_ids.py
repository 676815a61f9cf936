"""#20 finding 3: the unit does not leak through identifiers. A household rule's alert (device
`household:1201`, key `no-activity|b/b1/household:1201`) reaches masked roles (platform, admin
scoped and unscoped) with the unit replaced by one stable pseudonym in every place: alerts, their
history, keys, incidents, the live stream, actions' answers, and on the central API its lists,
its alert view and the CSV export. Responders still see the unit.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from edge.model import Alert, AlertEvent, DeviceRef
from edge.rules import load_rules_file
from edge.sinks import ReadingStore
from gateway.api import create_app
from gateway.audit import open_audit
from gateway.central.api import create_central_app
from gateway.central.server import open_store
from gateway.privacy import Pseudonyms
from gateway.tokens import TokenStore, open_tokens

PROFILES = ProfileRegistry.load(default_profile_dir())
UNIT = "1201"
ABSENCE = """
timezone: UTC
rules:
  - id: no-activity
    kind: absence
    summary: No activity
    severity: major
    quiet_hours: 1
    window: {from: "00:00", to: "23:00"}
    households: ["b/b1/1201"]
    signals:
      - {name: motion, categories: [motion], when: {field: motion, eq: true}}
"""
MASKED = ("platform", "admin_b", "admin_all")
RESPONDERS = ("duty_b", "manager_b")
_ROLES = {
    "platform": ("platform", ["b"]),
    "admin_b": ("admin", ["b"]),
    "admin_all": ("admin", ["*"]),
    "duty_b": ("duty_officer", ["b"]),
    "manager_b": ("property_manager", ["b"]),
}
_PSEUDONYM = re.compile(r"^household:h-[0-9a-f]{12}$")


@dataclass
class _World:
    agent: Agent
    client: httpx.AsyncClient
    tokens: TokenStore
    token: dict[str, str]
    alert: Alert
    incident: str

    async def get(self, who: str, url: str) -> httpx.Response:
        response = await self.client.get(
            url, headers={"Authorization": f"Bearer {self.token[who]}"}
        )
        assert response.status_code == 200, response.text
        return response


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = FakeClock(start)
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(ABSENCE)
    registry = DeviceRegistry(
        {"pir-7": DeviceRef("pir-7", "zigbee-pir-motion", "motion", "b", "b1", UNIT, slot=0)}
    )
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    readings = ReadingStore(tmp_path / "readings.db")
    agent = Agent(
        config, PROFILES, registry, [readings], clock,
        community_rules=load_rules_file(rules_file, PROFILES),
    )  # fmt: skip
    tokens = TokenStore(tmp_path / "tokens.db")
    token = {who: tokens.create(role, scope)[1] for who, (role, scope) in _ROLES.items()}
    async with agent:
        await agent.ticker.tick()  # watching starts
        clock.advance(3601)
        events = await agent.ticker.tick()
        for forwarder in agent.forwarders:
            await forwarder.drain()
        (opened,) = [e for e in events if e.kind == "opened"]
        assert opened.alert.device_id == f"household:{UNIT}"
        assert opened.alert.incident_id is not None
        app = create_app(agent, "bootstrap", readings, tokens=tokens)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield _World(agent, client, tokens, token, opened.alert, opened.alert.incident_id)


def _no_unit(text: str, where: str) -> None:
    assert UNIT not in text, f"{where}: the unit in {text[:300]}"


async def _stream(world: _World, who: str, event: AlertEvent) -> str:
    headers = {"Authorization": f"Bearer {world.token[who]}"}
    task = asyncio.create_task(world.client.get("/v1/alerts/stream", headers=headers))
    for _ in range(500):
        if len(world.agent.stream):
            break
        await asyncio.sleep(0.01)
    world.agent.stream.publish([event])
    world.agent.stream.close()
    response = await task
    assert response.status_code == 200
    return response.text


async def test_masked_roles_see_one_pseudonym_for_the_household_everywhere(
    world: _World,
) -> None:
    alert, incident = world.alert, world.incident
    seen: set[str] = set()
    for who in MASKED:
        listed = (await world.get(who, "/v1/alerts")).json()["items"]
        one = (await world.get(who, f"/v1/alerts/{alert.id}")).json()
        incidents = (await world.get(who, "/v1/incidents")).json()["items"]
        detail = (await world.get(who, f"/v1/incidents/{incident}")).json()
        for where, body in [
            ("list", listed), ("alert", one), ("incidents", incidents), ("incident", detail),
        ]:  # fmt: skip
            _no_unit(json.dumps(body), f"{who} {where}")
        shown = listed[0]
        assert shown["unit"] is None
        assert _PSEUDONYM.match(shown["device_id"]), shown["device_id"]
        assert shown["key"] == f"no-activity|b/b1/{shown['device_id']}"
        assert one["alert"]["device_id"] == shown["device_id"]
        assert {e["alert"]["device_id"] for e in one["history"]} == {shown["device_id"]}
        assert incidents[0]["devices"] == [shown["device_id"]]
        assert detail["incident"]["devices"] == [shown["device_id"]]
        assert detail["alerts"][0]["key"] == shown["key"]
        seen.add(shown["device_id"])
    assert len(seen) == 1  # one pseudonym for the household, whoever asks
    # stable across restarts: the key lives in tokens.db
    places = Pseudonyms(world.tokens.secret("unit-pseudonyms"))
    assert seen == {f"household:{places.unit('b', 'b1', UNIT)}"}
    # a different household, or the same unit number in another building, is another pseudonym
    assert places.unit("b", "b2", UNIT) != places.unit("b", "b1", UNIT)


async def test_responders_see_the_household_as_it_is(world: _World) -> None:
    for who in RESPONDERS:
        shown = (await world.get(who, "/v1/alerts")).json()["items"][0]
        assert (shown["unit"], shown["device_id"]) == (UNIT, f"household:{UNIT}")
        assert shown["key"] == f"no-activity|b/b1/household:{UNIT}"
        incident = (await world.get(who, "/v1/incidents")).json()["items"][0]
        assert incident["devices"] == [f"household:{UNIT}"]


@pytest.mark.parametrize("who", MASKED)
async def test_the_stream_carries_the_pseudonym(world: _World, who: str) -> None:
    event = AlertEvent(
        id="ev-stream", kind="repeated", at=world.alert.updated_at, actor="t", alert=world.alert
    )
    text = await _stream(world, who, event)
    assert "id: ev-stream" in text
    _no_unit(text, f"{who} stream")
    assert "household:h-" in text


async def test_an_admin_acting_gets_the_pseudonym_back(world: _World) -> None:
    headers = {"Authorization": f"Bearer {world.token['admin_b']}"}
    acked = await world.client.post(f"/v1/alerts/{world.alert.id}/ack", headers=headers)
    assert acked.status_code == 200, acked.text
    _no_unit(acked.text, "ack")
    resolved = await world.client.post(f"/v1/incidents/{world.incident}/resolve", headers=headers)
    assert resolved.status_code == 200, resolved.text
    _no_unit(resolved.text, "incident resolve")
    assert _PSEUDONYM.match(resolved.json()["devices"][0])


async def test_the_audit_log_names_a_household_by_its_pseudonym(
    world: _World, tmp_path: Path
) -> None:
    """Admins read the audit log: an away flag set on 1201 is recorded without the unit."""
    app = world.client._transport.app  # type: ignore[attr-defined]
    app.state.audit = audit = open_audit(tmp_path / "audit")
    headers = {"Authorization": f"Bearer {world.token['duty_b']}"}
    away = await world.client.put(
        f"/v1/households/b/b1/{UNIT}/away", json={"away": True}, headers=headers
    )
    assert away.status_code == 200, away.text
    records = (await world.get("admin_b", "/v1/audit?action=set_away")).json()
    assert len(records) == 1
    _no_unit(json.dumps(records), "audit")
    places = Pseudonyms(world.tokens.secret("unit-pseudonyms"))
    assert records[0]["object"] == f"household:b1/{places.unit('b', 'b1', UNIT)}"
    audit.close()


async def test_the_central_api_masks_the_household_in_lists_views_and_csv(
    world: _World, tmp_path: Path
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'central.db'}")
    tokens = open_tokens(tmp_path / "central")
    audit = open_audit(tmp_path / "central")
    try:
        token = {who: tokens.create(role, scope)[1] for who, (role, scope) in _ROLES.items()}
        _, agent_token = tokens.create("edge_agent", ["b"])
        app = create_central_app(store, tokens, audit)
        history = world.agent.alert_store.history(world.alert.id)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://central"
        ) as client:
            posted = await client.post(
                "/v1/alert-events",
                json={"events": [e.model_dump(mode="json") for e in history]},
                headers={"Authorization": f"Bearer {agent_token}"},
            )
            assert posted.status_code == 200, posted.text
            shown: set[str] = set()
            for who in (*MASKED, *RESPONDERS):
                headers = {"Authorization": f"Bearer {token[who]}"}
                if who == "admin_b":  # not a central role of its own: same masking as admin_all
                    continue
                listed = await client.get("/v1/alerts", headers=headers)
                one = await client.get(f"/v1/alerts/{world.alert.id}", headers=headers)
                export = await client.get("/v1/alerts/export.csv", headers=headers)
                for response in (listed, one, export):
                    assert response.status_code == 200, response.text
                (row,) = list(csv.DictReader(io.StringIO(export.text)))
                device = listed.json()["items"][0]["device_id"]
                if who in RESPONDERS:
                    assert device == row["device_id"] == f"household:{UNIT}"
                    continue
                for where, text in (
                    ("list", listed.text),
                    ("alert", one.text),
                    ("csv", export.text),
                ):
                    _no_unit(text, f"central {who} {where}")
                assert _PSEUDONYM.match(device)
                assert row["device_id"] == one.json()["alert"]["device_id"] == device
                assert listed.json()["items"][0]["key"] == f"no-activity|b/b1/{device}"
                shown.add(device)
            assert len(shown) == 1
    finally:
        store.close()
        tokens.close()
        audit.close()


def test_pseudonyms_are_keyed_and_leave_other_ids_alone() -> None:
    one, other = Pseudonyms(b"k" * 32), Pseudonyms(b"j" * 32)
    assert one.unit("b", "b1", UNIT) == one.unit("b", "b1", UNIT)
    assert one.unit("b", "b1", UNIT) != other.unit("b", "b1", UNIT)  # no key, no dictionary
    assert one.device_id("b", "b1", "sos-7") == "sos-7"
    assert one.device_id("b", "b1", "building:b1") == "building:b1"
    with pytest.raises(ValueError, match="16 bytes"):
        Pseudonyms(b"short")
