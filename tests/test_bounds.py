"""#20 finding 7: every query parameter at and past its bounds is a 4xx in the error envelope,
never a 500. Both APIs' OpenAPI documents are walked: each integer parameter gets overflowing
values, each time parameter the extremes of datetime (0001-01-01T00:00:00+14:00 underflows UTC),
one parameter at a time, with an admin token of every community.
"""

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
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from edge.sinks import ReadingStore
from gateway.api import create_app
from gateway.audit import open_audit
from gateway.central.api import create_central_app
from gateway.central.server import open_store
from gateway.tokens import open_tokens

PROFILES = ProfileRegistry.load(default_profile_dir())
BOOTSTRAP = "bootstrap-token-of-the-bounds"
OVERFLOWING_INTS = ["99999999999999999999", "-99999999999999999999", "9223372036854775808"]
OVERFLOWING_TIMES = [
    "0001-01-01T00:00:00+14:00",  # before datetime.min in UTC
    "9999-12-31T23:59:59-14:00",  # after datetime.max in UTC
    "0001-01-01T00:00:00+00:00",  # valid, but until - 30 days is not
    "1969-12-31T23:59:59+00:00",
]
EDGE_TIMES = ["1970-01-01T00:00:00+00:00", "9998-12-31T00:00:00+00:00"]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    readings = ReadingStore(tmp_path / "readings.db")
    clock = FakeClock(datetime.now(UTC))
    agent = Agent(config, PROFILES, DeviceRegistry(), [readings], clock)
    async with agent:
        app = create_app(agent, BOOTSTRAP, readings)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {BOOTSTRAP}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gw", headers=headers
        ) as client:
            yield client


@pytest.fixture
async def central(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = open_store(f"sqlite:///{tmp_path / 'central.db'}")
    tokens = open_tokens(tmp_path)
    audit = open_audit(tmp_path)
    _, token = tokens.create("admin", ["*"])
    app = create_central_app(store, tokens, audit)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://central", headers=headers
    ) as client:
        yield client
    store.close()
    tokens.close()
    audit.close()


def _kind(schema: dict[str, Any]) -> str | None:
    for option in [schema, *schema.get("anyOf", [])]:
        if option.get("type") == "integer":
            return "int"
        if option.get("format") == "date-time":
            return "time"
    return None


async def _probe(client: httpx.AsyncClient) -> tuple[int, list[str]]:
    """(requests sent, problems) over every GET with integer or time query parameters."""
    document = (await client.get("/openapi.json")).json()
    sent, problems = 0, []
    for path, operations in document["paths"].items():
        get = operations.get("get")
        if get is None or path.endswith("/stream"):
            continue
        url = path.replace("{", "").replace("}", "")  # a path parameter is its own name
        for parameter in get.get("parameters", []):
            if parameter["in"] != "query":
                continue
            kind = _kind(parameter["schema"])
            if kind is None:
                continue
            name = parameter["name"]
            wrong = OVERFLOWING_INTS if kind == "int" else OVERFLOWING_TIMES
            for value in wrong:
                response = await client.get(url, params={name: value})
                sent += 1
                if response.status_code != 422 or "error" not in response.json():
                    problems.append(f"{path}?{name}={value}: {response.status_code}")
            for value in EDGE_TIMES if kind == "time" else ["1"]:
                response = await client.get(url, params={name: value})
                sent += 1
                if response.status_code >= 500:
                    problems.append(f"{path}?{name}={value}: {response.status_code}")
    return sent, problems


async def test_the_gateway_refuses_every_overflowing_query_parameter(
    gateway: httpx.AsyncClient,
) -> None:
    sent, problems = await _probe(gateway)
    assert not problems, "\n".join(problems)
    assert sent >= 60  # limits, cursors, ids, min_alerts, since/until of summary and readings


async def test_the_central_api_refuses_every_overflowing_query_parameter(
    central: httpx.AsyncClient,
) -> None:
    sent, problems = await _probe(central)
    assert not problems, "\n".join(problems)
    assert sent >= 40


@pytest.mark.parametrize(
    "url",
    [
        "/v1/incidents?min_alerts=99999999999999999999",
        "/v1/summary?until=0001-01-01T00:00:00%2B14:00",
    ],
)
async def test_the_reported_urls_are_422(gateway: httpx.AsyncClient, url: str) -> None:
    response = await gateway.get(url)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
