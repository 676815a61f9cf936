"""An alert whose cause is superseded (a possible fall confirmed as a fall) is closed with a link
to its successor: resolved by `rule`, `superseded_by` the successor's id, in the alert list, one
alert's history and the duty console. A withdrawn suspicion still clears as before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import DeviceProfile
from edge.enrich import DeviceRegistry
from edge.errors import ProfileError
from edge.ingest import parse_mqtt_url
from edge.sinks import ReadingStore
from gateway.api import create_app
from tests.test_api import PROFILES, TOKEN, _clock, _Gateway
from tests.test_console import _sign_in

RADAR = "ce/c1/b1/tuya-fall-radar/rad-1"  # two stages: maybe_fall waits 60 s for a withdrawal
HEIMAN = "ce/c1/b1/heiman-fall-sensor/hfd-1"


@asynccontextmanager
async def _gateway(data_dir: Path, clock: FakeClock) -> AsyncIterator[_Gateway]:
    readings = ReadingStore(data_dir / "readings.db")
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=data_dir
    )
    async with Agent(config, PROFILES, DeviceRegistry(), [readings], clock) as agent:
        transport = httpx.ASGITransport(app=create_app(agent, TOKEN, readings))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield _Gateway(agent, clock, client)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[_Gateway]:
    async with _gateway(tmp_path / "data", _clock()) as gw:
        yield gw


def _radar(state: str) -> bytes:
    return f'{{"presence": true, "fall_down_status": "{state}"}}'.encode()


def _kinds(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.alert.rule, e.kind.value) for e in events]


async def _alert(gateway: _Gateway, alert_id: str) -> dict[str, Any]:
    response = await gateway.get(f"/v1/alerts/{alert_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_possible_fall_confirmed_as_a_fall_is_closed_with_a_link(
    gateway: _Gateway,
) -> None:
    events = await gateway.publish(RADAR, _radar("maybe_fall"))
    assert _kinds(events) == [("possible-fall", "opened")]
    possible = events[0].alert.id
    events = await gateway.publish(RADAR, _radar("fall"))
    assert _kinds(events) == [("fall", "opened"), ("possible-fall", "resolved")]
    fall = events[0].alert.id

    shown = await _alert(gateway, possible)
    alert, history = shown["alert"], shown["history"]
    assert (alert["status"], alert["resolved_by"], alert["superseded_by"]) == (
        "resolved",
        "rule",
        fall,
    )
    assert [(e["kind"], e["actor"]) for e in history] == [("opened", "rule"), ("resolved", "rule")]
    assert history[-1]["note"] == f"superseded by fall alert {fall}"
    assert history[-1]["alert"]["superseded_by"] == fall
    # the successor is the open one; the list shows the link on the closed one
    assert (await gateway.alert_ids(status="active")) == [fall]
    listed = (await gateway.get("/v1/alerts", status="resolved")).json()["items"]
    assert [(a["id"], a["superseded_by"]) for a in listed] == [(possible, fall)]
    # the duty console's alert page links to the successor
    signed = await _sign_in(gateway.client, TOKEN, f"/console/alerts/{possible}")
    assert signed.status_code == 303, signed.text
    page = await gateway.client.get(f"/console/alerts/{possible}")
    assert page.status_code == 200
    assert f'<a id="successor" href="/console/alerts/{fall}">' in page.text


async def test_a_suspicion_left_standing_becomes_a_fall_that_supersedes_it(
    gateway: _Gateway,
) -> None:
    events = await gateway.publish(RADAR, _radar("maybe_fall"))
    possible = events[0].alert.id
    gateway.clock.advance(61)  # not withdrawn within the rule's 60 s
    events = await gateway.agent.ticker.tick()
    assert _kinds(events) == [("fall", "opened"), ("possible-fall", "resolved")]
    assert events[1].alert.id == possible
    assert events[1].alert.superseded_by == events[0].alert.id


async def test_a_withdrawn_suspicion_clears_as_before_without_a_successor(
    gateway: _Gateway,
) -> None:
    await gateway.publish(RADAR, _radar("maybe_fall"))
    events = await gateway.publish(RADAR, _radar("none"))
    assert _kinds(events) == [("possible-fall", "resolved")]
    assert (events[0].alert.resolved_by, events[0].alert.superseded_by) == ("device", None)


async def test_a_fall_without_a_possible_fall_before_it_supersedes_nothing(
    gateway: _Gateway,
) -> None:
    events = await gateway.publish(HEIMAN, b'{"fall_status": "fall_alarm"}')
    assert _kinds(events) == [("fall", "opened")]
    await gateway.publish(HEIMAN, b'{"fall_status": "fall_warning"}')
    # a second fall report: the fall alert repeats and closes the possible fall opened since
    events = await gateway.publish(HEIMAN, b'{"fall_status": "fall_alarm"}')
    assert _kinds(events) == [("fall", "repeated"), ("possible-fall", "resolved")]


def _profile(rules: list[dict[str, Any]]) -> dict[str, Any]:
    radar = yaml.safe_load(PROFILES.get("tuya-fall-radar").model_dump_json())
    return {**radar, "rules": rules, "examples": []}


@pytest.mark.parametrize(
    ("supersedes", "message"),
    [(["nothing-such"], "not a rule of this model"), (["a"], "cannot supersede itself")],
)
def test_supersedes_names_a_rule_of_the_same_model(supersedes: list[str], message: str) -> None:
    rule: dict[str, Any] = {"id": "a", "summary": "A", "severity": "minor"}
    rule["supersedes"] = supersedes
    rule["when"] = {"field": "fall_state", "eq": "fall"}
    with pytest.raises((ProfileError, ValueError), match=message):
        DeviceProfile.model_validate(_profile([rule]))
