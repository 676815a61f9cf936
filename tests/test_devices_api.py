"""The devices API in-process over a real agent: registry, liveness, unregistered topics, reload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import RegistryFile
from edge.ingest import parse_mqtt_url
from edge.model import RawMessage
from edge.sinks import ReadingStore
from gateway.api import create_app
from gateway.audit import AuditLog
from gateway.tokens import TokenStore
from tests.in_process import handle_and_deliver

TOKEN = "token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROFILES = ProfileRegistry.load(default_profile_dir())
HEADER = "device_id,model,community,building,unit,install_date,resident_ref,emergency_contacts\n"
ROWS = (
    "sos-1,tuya-sos-button,garden,b1,1-101,2026-03-01,R-1,Li Na:13800138000\n"
    "sos-2,tuya-sos-button,garden,b2,2-101,,,\n"
    "gate-1,hikvision-access-controller,garden,b1,,,,\n"
    "smk-1,zigbee-ias-smoke,lakeside,b1,,,,\n"
)
HEARTBEAT = b'{"eventType": "heartBeat", "dateTime": "2026-01-01T08:00:00+08:00"}'


class _Api:
    def __init__(
        self,
        agent: Agent,
        client: httpx.AsyncClient,
        clock: FakeClock,
        tokens: TokenStore,
        audit: AuditLog,
    ) -> None:
        self.agent = agent
        self.client = client
        self.clock = clock
        self.tokens = tokens
        self.audit = audit

    async def get(self, url: str, token: str = TOKEN, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        response = await self.client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def publish(self, topic: str, payload: bytes) -> None:
        self.clock.advance(1)
        raw = RawMessage(topic=topic, payload=payload, received_at=self.clock.now())
        await handle_and_deliver(self.agent, raw)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[_Api]:
    devices = tmp_path / "devices.csv"
    devices.write_text(HEADER + ROWS)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    source = RegistryFile(devices, PROFILES)
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    readings = ReadingStore(tmp_path / "readings.db")
    agent = Agent(config, PROFILES, source.registry, [readings], clock, registry_file=source)
    tokens = TokenStore(tmp_path / "tokens.db")
    audit = AuditLog(tmp_path / "audit.db")
    async with agent:
        app = create_app(agent, TOKEN, readings, tokens=tokens, audit=audit)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield _Api(agent, client, clock, tokens, audit)


async def test_devices_are_listed_with_place_and_liveness(api: _Api) -> None:
    await api.publish("ce/garden/b1/tuya-sos-button/sos-1", b'{"battery": 77, "linkquality": 140}')

    body = await api.get("/v1/devices")

    assert [d["device_id"] for d in body["items"]] == ["sos-1", "sos-2", "gate-1", "smk-1"]
    first = body["items"][0]
    assert first["status"] == "online"
    assert (first["battery"], first["linkquality"], first["heartbeat_seconds"]) == (77, 140, 90000)
    assert first["last_seen"] is not None
    assert body["items"][1]["status"] == "unknown"
    assert "resident_ref" not in first  # personal details only on the device's own page


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"community": "garden"}, ["sos-1", "sos-2", "gate-1"]),
        ({"community": ["garden", "lakeside"], "building": "b1"}, ["sos-1", "gate-1", "smk-1"]),
        ({"model": "tuya-sos-button"}, ["sos-1", "sos-2"]),
        ({"status": "online"}, ["sos-1"]),
        ({"status": "unknown", "community": "lakeside"}, ["smk-1"]),
        ({"status": "offline"}, []),
    ],
)
async def test_devices_filter_by_community_building_model_and_status(
    api: _Api, params: dict[str, Any], expected: list[str]
) -> None:
    await api.publish("ce/garden/b1/tuya-sos-button/sos-1", b'{"battery": 77}')
    body = await api.get("/v1/devices", **params)
    assert [d["device_id"] for d in body["items"]] == expected


async def test_device_pages_follow_the_cursor(api: _Api) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        body = await api.get("/v1/devices", **params)
        seen.extend(d["device_id"] for d in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == (["sos-1", "sos-2", "gate-1", "smk-1"], 2)
    bad = await api.client.get("/v1/devices", params={"cursor": "x"}, headers=AUTH)
    assert bad.status_code == 422  # a cursor is the digits we handed out
    assert bad.json()["error"]["code"] == "invalid_request"


async def test_one_device_shows_its_contacts_and_open_alerts_and_why_it_is_offline(
    api: _Api,
) -> None:
    await api.agent.monitor.check()  # no session connected: nothing is judged offline
    await api.publish("ce/garden/b1/hikvision-access-controller/gate-1", HEARTBEAT)
    for lane in api.agent.lanes:  # as if connected: the monitor reads only the status
        lane.session.status.connected = True
    await api.agent.monitor.check()
    api.clock.advance(700)
    await api.agent.monitor.check()
    for forwarder in api.agent.forwarders:
        await forwarder.drain()

    gate = await api.get("/v1/devices/gate-1")
    assert gate["status"] == "offline"
    assert gate["reason"].startswith("no message for 11 min")
    assert [a["rule"] for a in gate["open_alerts"]] == ["device-offline"]
    _, duty = api.tokens.create("duty_officer", ["garden"])
    sos = await api.get("/v1/devices/sos-1", token=duty)
    assert (sos["install_date"], sos["resident_ref"], sos["unit"]) == ("2026-03-01", "R-1", "1-101")
    assert sos["emergency_contacts"] == [
        {"name": "Li Na", "phone": "13800138000", "relation": None}
    ]
    (read,) = api.audit.query(action="read_personal_data")
    assert (read.object, read.community, read.role) == ("device:sos-1", "garden", "duty_officer")
    # the bootstrap token is an admin: not a responder, so it sees the details masked
    masked = await api.get("/v1/devices/sos-1")
    assert (masked["resident_ref"], masked["unit"]) == (None, None)
    assert masked["emergency_contacts"] == [
        {"name": "L***a", "phone": "138****8000", "relation": None}
    ]
    missing = await api.client.get("/v1/devices/nope", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_unregistered_devices_and_unknown_topics_are_listed_until_registered(
    api: _Api, tmp_path: Path
) -> None:
    for _ in range(3):
        await api.publish("ce/garden/b9/tuya-sos-button/sos-new", b'{"battery": 60}')
    await api.publish("vendor/x/status", b"hello")

    listed = await api.get("/v1/devices/unregistered")

    assert [(e["topic"], e["cause"], e["count"]) for e in listed] == [
        ("vendor/x/status", "unknown_topic", 1),
        ("ce/garden/b9/tuya-sos-button/sos-new", "unknown_device", 3),
    ]
    assert (listed[1]["model"], listed[1]["device_id"]) == ("tuya-sos-button", "sos-new")
    assert listed[1]["sample_base64"] == "eyJiYXR0ZXJ5IjogNjB9"  # {"battery": 60}
    letters = await api.get("/v1/dead-letters")
    assert len(letters) == 4  # also kept as dead letters: nothing dropped

    devices = tmp_path / "devices.csv"
    devices.write_text(HEADER + ROWS + "sos-new,tuya-sos-button,garden,b9,9-101,,,\n")
    source = api.agent.registry_file
    assert source is not None
    registry = source.reload()
    assert registry is not None
    api.agent.use_registry(registry)

    assert [e["topic"] for e in await api.get("/v1/devices/unregistered")] == ["vendor/x/status"]
    await api.publish("ce/garden/b9/tuya-sos-button/sos-new", b'{"battery": 60}')
    assert (await api.get("/v1/devices/sos-new"))["status"] == "online"


async def test_a_reload_keeps_the_liveness_of_devices_that_stay(api: _Api, tmp_path: Path) -> None:
    await api.publish("ce/garden/b2/tuya-sos-button/sos-2", b'{"battery": 55}')
    devices = tmp_path / "devices.csv"
    # sos-1 removed, sos-2 now first
    devices.write_text(HEADER + "".join(ROWS.splitlines(keepends=True)[1:]))
    source = api.agent.registry_file
    assert source is not None
    registry = source.reload()
    assert registry is not None
    api.agent.use_registry(registry)

    body = await api.get("/v1/devices")
    assert [(d["device_id"], d["status"], d["battery"]) for d in body["items"]] == [
        ("sos-2", "online", 55),
        ("gate-1", "unknown", None),
        ("smk-1", "unknown", None),
    ]
    health = await api.get("/healthz")
    assert health["devices"]["registered"] == 3
    assert health["devices"]["by_status"] == {"unknown": 2, "online": 1, "offline": 0}
