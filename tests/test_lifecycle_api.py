"""The lifecycle API in-process over a real agent: assignment, incidents, silences, escalation
through the agent's own task, and the response figures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from edge.sinks import ReadingStore
from gateway.api import create_app
from tests.lifecycle import CRITICAL_POLICY
from tests.test_api import (
    PROFILES,
    SMOKE,
    SMOKE_CLEARED,
    SOS,
    TOKEN,
    _clock,
    _Gateway,
    _smoke,
    _sos,
)


@asynccontextmanager
async def _gateway(data_dir: Path, clock: FakeClock) -> AsyncIterator[_Gateway]:
    readings = ReadingStore(data_dir / "readings.db")
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"),
        client_id="test-gateway",
        data_dir=data_dir,
        escalation_policies=(CRITICAL_POLICY,),
        flap_transitions=4,
        flap_window_s=300,
    )
    agent = Agent(config, PROFILES, DeviceRegistry(), [readings], clock)
    async with agent:
        transport = httpx.ASGITransport(app=create_app(agent, TOKEN, readings))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield _Gateway(agent, clock, client)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[_Gateway]:
    async with _gateway(tmp_path / "data", _clock()) as gw:
        yield gw


async def _escalate(gateway: _Gateway, seconds: int) -> list[str | None]:
    """Run the agent's escalation task's checks over `seconds`, delivering what they commit."""
    tiers: list[str | None] = []
    for _ in range(seconds):
        gateway.clock.advance(1)
        tiers.extend(e.tier for e in await gateway.agent.escalator.check())
    for forwarder in gateway.agent.forwarders:
        await forwarder.drain()
    return tiers


async def test_assignment_is_an_event_with_the_actor_and_keeps_the_status(
    gateway: _Gateway,
) -> None:
    alert_id = await gateway.open_alert(_sos("sos-1"), SOS)
    response = await gateway.post(
        f"/v1/alerts/{alert_id}/assign", {"assignee": "officer-7", "note": "nearest"}
    )
    assert response.status_code == 200
    assert (response.json()["assignee"], response.json()["status"]) == ("officer-7", "active")
    history = (await gateway.get(f"/v1/alerts/{alert_id}")).json()["history"]
    assert [(e["kind"], e["actor"], e["note"]) for e in history] == [
        ("opened", "rule", None),
        ("assigned", "api-token", "nearest"),
    ]
    assert len({e["id"] for e in history}) == 2
    assert (await gateway.post(f"/v1/alerts/{alert_id}/assign", {})).status_code == 422
    await gateway.post(f"/v1/alerts/{alert_id}/resolve")
    late = await gateway.post(f"/v1/alerts/{alert_id}/assign", {"assignee": "officer-8"})
    assert late.status_code == 409
    assert (await gateway.post("/v1/alerts/nope/assign", {"assignee": "x"})).status_code == 404


async def test_escalation_through_the_agent_stops_on_ack_and_shows_in_the_history(
    gateway: _Gateway,
) -> None:
    alert_id = await gateway.open_alert(_sos("sos-1"), SOS)
    assert await _escalate(gateway, 301) == ["property_manager", "emergency_contacts"]
    assert (await gateway.post(f"/v1/alerts/{alert_id}/ack")).status_code == 200
    assert await _escalate(gateway, 900) == []
    history = (await gateway.get(f"/v1/alerts/{alert_id}")).json()["history"]
    assert [(e["kind"], e["tier"], e["notify"]) for e in history] == [
        ("opened", "duty_officer", True),
        ("escalated", "property_manager", True),
        ("escalated", "emergency_contacts", True),
        ("acknowledged", None, True),
    ]


async def test_escalation_timers_survive_a_restart(tmp_path: Path) -> None:
    clock = _clock()
    async with _gateway(tmp_path / "data", clock) as before:
        alert_id = await before.open_alert(_sos("sos-1"), SOS)
        assert await _escalate(before, 60) == []
    clock.advance(100)  # down until 160 s: the property manager's step (120 s) passed meanwhile
    async with _gateway(tmp_path / "data", clock) as after:
        assert after.agent.alerts.escalations_pending == 1
        assert await _escalate(after, 1) == ["property_manager"]
        assert await _escalate(after, 139) == ["emergency_contacts"]  # at 300 s, as planned
        stored = (await after.get(f"/v1/alerts/{alert_id}")).json()["alert"]
        assert (stored["escalations"], stored["escalation_step"]) == (2, 3)


async def test_an_incident_groups_alerts_and_acknowledging_it_covers_each(
    gateway: _Gateway,
) -> None:
    first = await gateway.open_alert(_smoke("smk-1"), SMOKE)
    second = await gateway.open_alert(_smoke("smk-2"), SMOKE)
    elsewhere = await gateway.open_alert(_smoke("smk-3", community="c3"), SMOKE)
    listed = (await gateway.get("/v1/incidents", min_alerts=2)).json()["items"]
    assert [(i["alert_count"], i["status"], i["devices"]) for i in listed] == [
        (2, "active", ["smk-1", "smk-2"])
    ]
    incident_id = listed[0]["id"]
    detail = (await gateway.get(f"/v1/incidents/{incident_id}")).json()
    assert [a["id"] for a in detail["alerts"]] == [first, second]

    ack = await gateway.post(f"/v1/incidents/{incident_id}/ack", {"note": "fire team sent"})
    assert ack.status_code == 200
    assert ack.json()["status"] == "acknowledged"
    for alert_id in (first, second):
        history = (await gateway.get(f"/v1/alerts/{alert_id}")).json()["history"]
        assert [(e["kind"], e["note"]) for e in history][-1] == ("acknowledged", "fire team sent")
    assert (await gateway.post(f"/v1/incidents/{incident_id}/ack")).status_code == 409
    assert (await gateway.get(f"/v1/alerts/{elsewhere}")).json()["alert"]["status"] == "active"

    done = await gateway.post(f"/v1/incidents/{incident_id}/resolve", {"note": "put out"})
    assert done.json()["status"] == "resolved"
    assert (await gateway.get("/v1/incidents", open="true", min_alerts=2)).json()["items"] == []
    assert (await gateway.get("/v1/incidents/nope")).status_code == 404
    assert (await gateway.post("/v1/incidents/nope/resolve")).status_code == 404


async def test_a_silence_through_the_api_holds_notifications_but_records_the_alert(
    gateway: _Gateway,
) -> None:
    now = gateway.clock.now()
    created = await gateway.post(
        "/v1/silences",
        {
            "community": "c2",
            "rule": "smoke",
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "reason": "detector maintenance",
        },
    )
    assert created.status_code == 201, created.text
    silence = created.json()
    assert (silence["created_by"], silence["expired_at"]) == ("api-token", None)
    events = await gateway.publish(_smoke("smk-1"), SMOKE)
    assert [(e.kind, e.notify) for e in events] == [("opened", False)]
    events = await gateway.publish(_smoke("smk-1"), SMOKE_CLEARED)
    assert [(e.kind, e.notify) for e in events] == [("resolved", False)]
    assert len(await gateway.alert_ids()) == 1  # recorded all the same

    listed = (await gateway.get("/v1/silences")).json()["items"]
    assert [s["id"] for s in listed] == [silence["id"]]
    expired = await gateway.client.delete(
        f"/v1/silences/{silence['id']}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert expired.status_code == 200
    assert expired.json()["expired_by"] == "api-token"
    assert (await gateway.get("/v1/silences")).json()["items"] == []
    assert len((await gateway.get("/v1/silences", all="true")).json()["items"]) == 1
    again = await gateway.client.delete(
        f"/v1/silences/{silence['id']}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert again.status_code == 409
    events = await gateway.publish(_smoke("smk-1"), SMOKE)
    assert [(e.kind, e.notify) for e in events] == [("opened", True)]


async def test_silences_survive_a_restart(tmp_path: Path) -> None:
    clock = _clock()
    async with _gateway(tmp_path / "data", clock) as before:
        body = {"device_id": "smk-9", "ends_at": (clock.now() + timedelta(hours=1)).isoformat()}
        assert (await before.post("/v1/silences", {**body, "reason": "x"})).status_code == 201
    async with _gateway(tmp_path / "data", clock) as after:
        events = await after.publish(_smoke("smk-9"), SMOKE)
        assert [(e.kind, e.notify) for e in events] == [("opened", False)]


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "no matcher", "ends_at": "2030-01-01T00:00:00Z"},
        {"community": "c1", "reason": "no end"},
        {"community": "c1", "ends_at": "2030-01-01T00:00:00"},  # no reason, no zone
        {"community": "c1", "reason": "x", "recurrence": {"every": "month", "start": "10:00"}},
        {"community": "c1", "reason": "x", "ends_at": "2030-01-01T00:00:00Z", "by": "me"},
    ],
)
async def test_invalid_silences_are_422(gateway: _Gateway, body: dict[str, object]) -> None:
    assert (await gateway.post("/v1/silences", body)).status_code == 422


async def test_flapping_is_notified_once(gateway: _Gateway) -> None:
    notified = []
    for _ in range(4):
        notified += [e.notify for e in await gateway.publish(_smoke("smk-1"), SMOKE)]
        notified += [e.notify for e in await gateway.publish(_smoke("smk-1"), SMOKE_CLEARED)]
    # the 4th change makes it flap: the next opening is the one notice (and its resolution, as
    # it was notified); the one after is recorded quietly
    assert notified == [True, True, True, True, True, True, False, False]
    history = [
        (await gateway.get(f"/v1/alerts/{alert_id}")).json()["alert"]["flapping"]
        for alert_id in reversed(await gateway.alert_ids())
    ]
    assert history == [False, False, True, True]


async def test_response_figures_per_community(gateway: _Gateway) -> None:
    ids = [await gateway.open_alert(_sos(f"sos-{i}"), SOS) for i in range(4)]
    for n, alert_id in enumerate(ids[:3]):
        gateway.clock.advance(10 * (n + 1) - 1)  # acknowledged 10, 20 and 30 s after opening
        assert (await gateway.post(f"/v1/alerts/{alert_id}/ack")).status_code == 200
    gateway.clock.advance(60)
    assert (await gateway.post(f"/v1/alerts/{ids[0]}/resolve")).status_code == 200
    await _escalate(gateway, 120)
    await gateway.open_alert(_smoke("smk-1"), SMOKE)  # another community
    response = await gateway.get("/v1/summary", community="c1")
    assert response.status_code == 200
    (c1,) = response.json()["items"]
    assert (c1["opened"], c1["acknowledged"], c1["resolved_by_person"]) == (4, 3, 1)
    assert c1["open_by_severity"] == {"critical": 3}
    assert c1["escalations"] == 1  # the unacknowledged one reached the property manager
    assert c1["escalated_alerts"] == 1
    # opened at 1, 2, 3 s, acknowledged at 13, 32, 61 s: waits 12, 30, 58 s (nearest rank)
    assert (c1["ack_p50_s"], c1["ack_p90_s"]) == (30.0, 58.0)
    assert c1["resolve_p50_s"] == c1["resolve_p90_s"] == 120.0  # resolved at 121 s
    both = (await gateway.get("/v1/summary")).json()["items"]
    assert [s["community"] for s in both] == ["c1", "c2"]
