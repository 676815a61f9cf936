"""Community A's token against every route with community B's ids: nothing of B ever shows.

Every route of the app must be in ROUTES below, so a new route fails this test until somebody has
said how its scope is guarded. Objects of B are 404 (not 403: ids do not leak), lists never hold B,
read-only and admin routes refuse; no B id appears in any answer; refusals are audited.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from edge.agent import Agent, AgentConfig
from edge.alerts import SilenceSpec
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import CareWorker, DeviceRegistry, FamilyContact, Household, Resident
from edge.ingest import parse_mqtt_url
from edge.model import AlertEvent, RawMessage
from edge.sinks import ReadingStore
from gateway.api import create_app
from gateway.audit import AuditLog
from gateway.tokens import TokenStore
from tests.factories import press_sos

PROFILES = ProfileRegistry.load(default_profile_dir())
BOOTSTRAP = "bootstrap-admin-token"


Expect = Literal["not_found", "no_b", "forbidden", "open"]
# B's household in the register: its care worker and family are people of b, never of a
_B_HOUSEHOLD = Household(
    community="b",
    building="b1",
    unit="hh-b-301",
    residents=(Resident(name="张桂英", phone="13812345678"),),
    living_alone=True,
    care_worker=CareWorker(person_id="p-a", name="王芳"),
    family=(FamilyContact(name="李明", phone="13900001111", person_id="p-a"),),
)


@dataclass
class _World:
    agent: Agent
    client: httpx.AsyncClient
    audit: AuditLog
    tokens: TokenStore
    a_token: str
    b: dict[str, str]  # B's ids: alert, incident, silence, device
    a_alert: str

    async def call(self, method: str, url: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.a_token}"}
        return await self.client.request(method, url, json=body, headers=headers)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    readings = ReadingStore(tmp_path / "readings.db")
    agent = Agent(config, PROFILES, DeviceRegistry(), [readings], clock)
    tokens = TokenStore(tmp_path / "tokens.db")
    audit = AuditLog(tmp_path / "audit.db")
    _, a_token = tokens.create("duty_officer", ["a"])
    async with agent:
        (b_event,) = await press_sos(agent, clock, "ce/b/b1/tuya-sos-button/sos-b1")
        (a_event,) = await press_sos(agent, clock, "ce/a/a1/tuya-sos-button/sos-a1")
        spec = SilenceSpec(
            community="b", reason="drill in b", ends_at=datetime(2099, 1, 1, tzinfo=UTC)
        )
        silence = agent.add_silence(spec, "admin")
        incident = b_event.alert.incident_id
        assert incident is not None
        agent.households.put(_B_HOUSEHOLD, clock.now())
        b = {
            "alert": b_event.alert.id,
            "incident": incident,
            "silence": silence.id,
            "device": "sos-b1",
            "household": _B_HOUSEHOLD.unit,
        }
        app = create_app(agent, BOOTSTRAP, readings, tokens=tokens, audit=audit)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield _World(agent, client, audit, tokens, a_token, b, a_event.alert.id)


def _routes(world: _World) -> dict[tuple[str, str], tuple[str, Any, Expect]]:
    """(method, route path) -> (URL with B's ids, body, what A's token must get)."""
    b = world.b
    note = {"note": "not yours"}
    return {
        ("GET", "/openapi.json"): ("/openapi.json", None, "open"),
        ("GET", "/docs"): ("/docs", None, "open"),
        ("GET", "/docs/oauth2-redirect"): ("/docs/oauth2-redirect", None, "open"),
        ("GET", "/redoc"): ("/redoc", None, "open"),
        ("GET", "/favicon.ico"): ("/favicon.ico", None, "open"),  # a redirect to the icon
        # the duty console (a mounted app of cookie sessions): its scope is tested route by
        # route in tests/test_console.py (the board's row route, /console/board/rows: another
        # community's alert is the 404 of a missing one, masked as the board; central's in
        # tests/test_console_central.py); without a session every page sends to sign-in
        ("GET", "/console"): ("/console/", None, "open"),
        ("GET", "/healthz"): ("/healthz", None, "open"),
        ("GET", "/readyz"): ("/readyz", None, "open"),
        ("GET", "/metrics"): ("/metrics", None, "open"),
        # action links carry their own signed authority; this app has none: refused as invalid
        ("GET", "/a/{token}"): ("/a/forged.token", None, "open"),
        ("POST", "/a/{token}"): ("/a/forged.token", None, "open"),
        # SMS short links and provider callbacks: their own authority (a code, the callback
        # URL's token); this app has neither: an unknown code page, a plain 404
        ("GET", "/s/{code}"): ("/s/aaaaaaaaaaaa", None, "open"),
        ("POST", "/callbacks/{provider}/{token}/{medium}"): (
            "/callbacks/aliyun/forged-token-000000/voice",
            [],
            "open",
        ),
        ("GET", "/v1/alerts"): ("/v1/alerts?community=b&community=a", None, "no_b"),
        ("GET", "/v1/alerts/stream"): ("/v1/alerts/stream?community=b", None, "no_b"),
        ("GET", "/v1/alerts/{alert_id}"): (f"/v1/alerts/{b['alert']}", None, "not_found"),
        ("POST", "/v1/alerts/{alert_id}/ack"): (f"/v1/alerts/{b['alert']}/ack", note, "not_found"),
        ("POST", "/v1/alerts/{alert_id}/resolve"): (
            f"/v1/alerts/{b['alert']}/resolve",
            note,
            "not_found",
        ),
        ("POST", "/v1/alerts/{alert_id}/assign"): (
            f"/v1/alerts/{b['alert']}/assign",
            {"assignee": "someone"},
            "not_found",
        ),
        ("GET", "/v1/incidents"): ("/v1/incidents?community=b", None, "no_b"),
        ("GET", "/v1/incidents/{incident_id}"): (
            f"/v1/incidents/{b['incident']}",
            None,
            "not_found",
        ),
        ("POST", "/v1/incidents/{incident_id}/ack"): (
            f"/v1/incidents/{b['incident']}/ack",
            note,
            "not_found",
        ),
        ("POST", "/v1/incidents/{incident_id}/resolve"): (
            f"/v1/incidents/{b['incident']}/resolve",
            note,
            "not_found",
        ),
        ("POST", "/v1/silences"): (
            "/v1/silences",
            {"community": "b", "reason": "silence someone else", "ends_at": "2099-01-01T00:00:00Z"},
            "not_found",
        ),
        ("GET", "/v1/silences"): ("/v1/silences?all=true", None, "no_b"),
        ("DELETE", "/v1/silences/{silence_id}"): (
            f"/v1/silences/{b['silence']}",
            None,
            "not_found",
        ),
        ("GET", "/v1/summary"): ("/v1/summary?community=b", None, "no_b"),
        ("GET", "/v1/devices"): ("/v1/devices?community=b", None, "no_b"),
        ("GET", "/v1/devices/unregistered"): ("/v1/devices/unregistered", None, "forbidden"),
        ("GET", "/v1/devices/{device_id}"): (f"/v1/devices/{b['device']}", None, "not_found"),
        ("GET", "/v1/readings"): (f"/v1/readings?device_id={b['device']}", None, "no_b"),
        ("GET", "/v1/dead-letters"): ("/v1/dead-letters", None, "forbidden"),
        ("PUT", "/v1/households/{community}/{building}/{unit}/away"): (
            "/v1/households/b/b1/101/away",
            {"away": True},
            "not_found",
        ),
        ("GET", "/v1/households/{community}/{building}/{unit}/rhythm"): (
            "/v1/households/b/b1/101/rhythm",
            None,
            "not_found",
        ),
        ("POST", "/v1/households/{community}/{building}/{unit}/signs"): (
            "/v1/households/b/b1/101/signs",
            {"source": "check_in"},
            "not_found",
        ),
        ("GET", "/v1/audit"): ("/v1/audit", None, "forbidden"),
        ("GET", "/v1/reports/care/{community}"): (
            "/v1/reports/care/b?month=2026-11",
            None,
            "not_found",
        ),
        ("GET", "/v1/households"): ("/v1/households?community=b", None, "no_b"),
        ("POST", "/v1/households"): (
            "/v1/households",
            {"community": "b", "building": "b1", "unit": "hh-b-302"},
            "not_found",
        ),
        ("GET", "/v1/households/export"): ("/v1/households/export?community=b", None, "no_b"),
        ("POST", "/v1/households/import"): ("/v1/households/import?community=b", None, "not_found"),
        ("GET", "/v1/households/{community}/{building}/{unit}"): (
            f"/v1/households/b/b1/{b['household']}",
            None,
            "not_found",
        ),
        ("PUT", "/v1/households/{community}/{building}/{unit}"): (
            f"/v1/households/b/b1/{b['household']}",
            {"community": "b", "building": "b1", "unit": b["household"], "note": "mine now"},
            "not_found",
        ),
        ("DELETE", "/v1/households/{community}/{building}/{unit}"): (
            f"/v1/households/b/b1/{b['household']}",
            None,
            "not_found",
        ),
        ("GET", "/v1/households/{community}/{building}/{unit}/visits"): (
            f"/v1/households/b/b1/{b['household']}/visits",
            None,
            "not_found",
        ),
        ("POST", "/v1/households/{community}/{building}/{unit}/visits"): (
            f"/v1/households/b/b1/{b['household']}/visits",
            {"condition": "good"},
            "not_found",
        ),
        ("GET", "/v1/visits/due"): ("/v1/visits/due?community=b", None, "no_b"),
    }


def _app_routes(world: _World) -> set[tuple[str, str]]:
    app = world.client._transport.app  # type: ignore[attr-defined]
    found = set()
    for route in iter_route_contexts(app.routes):  # included routers' routes, flattened
        methods = route.methods or {"GET"}
        for method in methods - {"HEAD"}:
            found.add((method, str(route.path)))
    return found


async def test_every_route_is_classified_for_tenancy(world: _World) -> None:
    unguarded = _app_routes(world) - set(_routes(world))
    assert not unguarded, f"routes without a tenancy entry in this test: {sorted(unguarded)}"
    app = world.client._transport.app  # type: ignore[attr-defined]
    api_routes = [
        r for r in iter_route_contexts(app.routes) if isinstance(r.original_route, APIRoute)
    ]
    assert len(api_routes) >= 20


async def _stream_body(world: _World, url: str) -> str:
    """The stream's body while one event of B and one of A are published, until it closes."""
    task = asyncio.create_task(world.call("GET", url))
    for _ in range(200):
        if len(world.agent.stream):
            break
        await asyncio.sleep(0.01)
    b_alert = world.agent.alert_store.get(world.b["alert"])
    a_alert = world.agent.alert_store.get(world.a_alert)
    assert b_alert is not None
    assert a_alert is not None
    for alert in (b_alert, a_alert):
        event = AlertEvent(
            id=f"ev-{alert.id}", kind="repeated", at=alert.updated_at, actor="t", alert=alert
        )
        world.agent.stream.publish([event])
    await asyncio.sleep(0.05)
    world.agent.stream.close()
    response = await task
    assert response.status_code == 200
    return response.text


def _expect_for(role: str, expect: Expect, method: str, path: str) -> Expect:
    """What a token of `role` scoped to community a must get where a duty officer gets `expect`."""
    if expect == "open":
        return "open"
    if role == "edge_agent":
        return "forbidden"  # it only posts alert events to a central API
    if role in ("care_worker", "family") and not path.startswith(
        ("/v1/households", "/v1/visits", "/v1/reports")
    ):
        return "forbidden"  # the people of the care work read their own households only
    if role == "family" and path.startswith("/v1/reports"):
        return "forbidden"  # a care worker reads her households' report, a family member none
    if role == "family" and path in ("/v1/households/export", "/v1/visits/due"):
        return "forbidden"
    if role == "platform" and (method, path) == ("POST", "/v1/silences"):
        return "forbidden"  # may not act, whichever community the body names: nothing to learn
    if role == "admin" and expect == "forbidden":
        return "no_b"  # the installer's views, filtered to its communities
    return expect


async def _walk(world: _World, role: str) -> tuple[list[str], int, int]:
    """Every route with B's ids as `role` of community a: (leaks, routes, writes) walked."""
    leaks: list[str] = []
    writes = 0
    routes = _routes(world)
    for (method, path), (url, body, duty_expect) in routes.items():
        expect = _expect_for(role, duty_expect, method, path)
        writes += method != "GET"
        if url.startswith("/v1/alerts/stream") and expect != "forbidden":
            text = await _stream_body(world, url)
            status = 200
        else:
            response = await world.call(method, url, body)
            text, status = response.text, response.status_code
        wanted = {"not_found": 404, "forbidden": 403, "no_b": 200}.get(expect)
        if wanted is not None and status != wanted:
            leaks.append(f"{role} {method} {url}: {status}, expected {wanted}: {text[:200]}")
        named = [ident for ident in world.b.values() if ident in url]
        if expect == "not_found" and named:
            # the answer must be the one for an id that does not exist at all
            missing = await world.call(method, url.replace(named[0], "missing-id"), body)
            if (status, text.replace(named[0], "missing-id")) != (
                missing.status_code,
                missing.text,
            ):
                leaks.append(f"{role} {method} {url}: answers otherwise than for a missing id")
            text = text.replace(named[0], "")
        for what, ident in world.b.items():
            if ident in text:
                leaks.append(f"{role} {method} {url}: B's {what} id {ident} in the answer")
        if expect == "no_b" and '"community":"b"' in text.replace(" ", ""):
            leaks.append(f"{role} {method} {url}: an object of community b in the answer")
    return leaks, len(routes), writes


def _b_unchanged(world: _World) -> list[str]:
    """What A's attempts changed of B: nothing, or a list of what."""
    changed = []
    alert = world.agent.alert_store.get(world.b["alert"])
    assert alert is not None
    if (alert.status, alert.assignee, alert.note) != ("active", None, None):
        changed.append(f"B's alert is now {alert.status}, {alert.assignee}, {alert.note}")
    if len(world.agent.alert_store.history(world.b["alert"])) != 1:
        changed.append("B's alert has new events")
    every = world.agent.alert_store.silences(current_at=None, limit=100)
    silences = [s for s in every if s.community == "b"]
    if [(s.id, s.expired_at) for s in silences] != [(world.b["silence"], None)]:
        changed.append(f"B's silences are now {silences}")
    if world.agent.pipeline.rules.is_away("b", "b1", "101"):
        changed.append("B's household 101 is marked away")
    household = world.agent.households.get(_B_HOUSEHOLD.id)
    if household is None or household.revision != 1 or household.note is not None:
        changed.append(f"B's household is now {household}")
    if world.agent.households.get("b/b1/hh-b-302") is not None:
        changed.append("a household was added to B")
    if world.agent.visits.list(communities=["b"]):
        changed.append("B's household has a visit")
    return changed


async def test_a_token_of_community_a_never_reaches_community_b(world: _World) -> None:
    leaks, _, _ = await _walk(world, "duty_officer")
    assert not leaks, "\n".join(leaks)
    assert not _b_unchanged(world)
    refused = world.audit.query(action="cross_tenant")
    assert {r.result for r in refused} == {"refused"}
    assert len(refused) >= 9  # one per object route above


# every role a token scoped to community a may have; the duty officer is the test above
SCOPED_ROLES = ("property_manager", "platform", "admin", "edge_agent", "care_worker", "family")
# writes on A's own alert: who may act (200) and who only reads or posts (403)
_ACTS = {"duty_officer": 200, "property_manager": 200, "admin": 200, "platform": 403}


@pytest.mark.parametrize("role", SCOPED_ROLES)
async def test_every_role_scoped_to_community_a_never_reaches_b(world: _World, role: str) -> None:
    """#20: the matrix from reads to every write (ack, resolve, assign, incidents, silences, away),
    for every role, the scoped admin included: B's objects are 404 (or 403 for a role with no
    business there), lists hold nothing of B, and nothing of B changes."""
    # a care worker or family member of a who is named as B's household's care worker and family:
    # the community scope still keeps B's household from them
    person = "p-a" if role in ("care_worker", "family") else None
    _, world.a_token = world.tokens.create(role, ["a"], person=person)
    leaks, routes, writes = await _walk(world, role)
    assert not leaks, "\n".join(leaks)
    assert not _b_unchanged(world)
    # 14 API writes (8, 5 of households and visits, a sign of life), the action link's and a
    # provider callback's
    assert (routes, writes) == (len(_routes(world)), 16)
    if role != "edge_agent":  # refused before any object is looked up: nothing to audit
        refused = world.audit.query(action="cross_tenant")
        assert len(refused) >= (7 if person else 9)
        assert {(r.actor, r.result) for r in refused} == {(world.a_token.split("_")[1], "refused")}
    acked = await world.call("POST", f"/v1/alerts/{world.a_alert}/ack", {"note": "mine"})
    assert acked.status_code == _ACTS.get(role, 403), acked.text


async def test_an_admin_of_every_community_reaches_b_and_acts_masked(world: _World) -> None:
    """The unscoped admin is the control: the same routes answer it with B's objects."""
    _, world.a_token = world.tokens.create("admin", ["*"])
    b = world.b
    for url in (
        f"/v1/alerts/{b['alert']}",
        f"/v1/incidents/{b['incident']}",
        f"/v1/devices/{b['device']}",
    ):
        response = await world.call("GET", url)
        assert response.status_code == 200, f"{url}: {response.text}"
    listed = (await world.call("GET", "/v1/alerts?community=b")).json()["items"]
    assert [a["id"] for a in listed] == [b["alert"]]
    assigned = await world.call("POST", f"/v1/alerts/{b['alert']}/assign", {"assignee": "lead"})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["unit"] is None  # an admin is not a responder: masked
    expired = await world.call("DELETE", f"/v1/silences/{b['silence']}")
    assert expired.status_code == 200, expired.text
    away = await world.call("PUT", "/v1/households/b/b1/101/away", {"away": True})
    assert away.status_code == 200, away.text
    assert not world.audit.query(action="cross_tenant")


async def test_a_token_of_community_a_still_sees_and_acts_on_a(world: _World) -> None:
    listed = (await world.call("GET", "/v1/alerts")).json()["items"]
    assert [a["community"] for a in listed] == ["a"]
    assert listed[0]["unit"] is None  # its topic names no unit; a responder would see one
    acked = await world.call("POST", f"/v1/alerts/{world.a_alert}/ack", {"note": "on my way"})
    assert acked.status_code == 200, acked.text
    (record,) = world.audit.query(action="acknowledge")
    assert (record.object, record.community, record.result) == (f"alert:{world.a_alert}", "a", "ok")


_RESIDENT = "张三丰 13812345678"
_PERSONAL = json.dumps({"action": "emergency", "battery": _RESIDENT}, ensure_ascii=False).encode()


async def _dead_letter(world: _World, topic: str, payload: bytes) -> None:
    out = world.agent.pipeline.handle(
        RawMessage(topic=topic, payload=payload, received_at=datetime.now(UTC))
    )
    assert out.dead_letter is not None
    await world.agent.outbox.commit(dead_letters=[out.dead_letter])


async def _as(world: _World, token: str, url: str) -> httpx.Response:
    return await world.client.get(url, headers={"Authorization": f"Bearer {token}"})


async def test_an_admin_of_community_a_reads_only_as_raw_data(world: _World) -> None:
    """#20 finding 2: a community admin got every community's dead letters, unregistered topics
    and audit records, with residents' names and phones in the payloads."""
    _, admin_a = world.tokens.create("admin", ["a"])
    await _dead_letter(world, "ce/b/b1/tuya-sos-button/sos-b1", _PERSONAL)
    await _dead_letter(world, "ce/a/a1/tuya-sos-button/sos-a1", _PERSONAL)
    await _dead_letter(world, "vendor/x/unclaimed", _PERSONAL)  # names no community
    world.audit.record(
        actor="tok-b", role="duty_officer", community="b", object="alert:x", action="ack",
        result="ok", request_id="r1",
    )  # fmt: skip
    world.audit.record(
        actor="tok-a", role="duty_officer", community="a", object="alert:y", action="ack",
        result="ok", request_id="r2",
    )  # fmt: skip

    letters = (await _as(world, admin_a, "/v1/dead-letters")).json()
    assert [d["topic"] for d in letters] == ["ce/a/a1/tuya-sos-button/sos-a1"]
    unregistered = (await _as(world, admin_a, "/v1/devices/unregistered")).json()
    assert [u["topic"] for u in unregistered] == []  # only the unclaimed topic is unregistered
    audit = (await _as(world, admin_a, "/v1/audit")).json()
    assert {r["community"] for r in audit} == {"a"}
    assert (await _as(world, admin_a, "/v1/audit?community=b")).json() == []
    refused = world.audit.query(action="read_audit")
    assert [(r.community, r.result) for r in refused] == [("b", "refused")]

    # the unscoped admin sees every community and what names none, still masked
    everything = (await _as(world, BOOTSTRAP, "/v1/dead-letters")).json()
    assert len(everything) == 3
    unclaimed = (await _as(world, BOOTSTRAP, "/v1/devices/unregistered")).json()
    assert [u["topic"] for u in unclaimed] == ["vendor/x/unclaimed"]
    shown = [base64.b64decode(d["payload_base64"]).decode() for d in everything]
    shown += [base64.b64decode(u["sample_base64"]).decode() for u in unclaimed]
    shown += [d["detail"] for d in everything]
    for text in shown:
        assert "张三丰" not in text
        assert "13812345678" not in text
    assert json.loads(shown[0]) == {"action": "emergency", "battery": "张" + "*" * 13 + "8"}
