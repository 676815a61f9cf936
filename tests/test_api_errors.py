"""The gateway and the central API answer the same refusal with the same envelope and code name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from gateway.api import create_app
from gateway.audit import open_audit
from gateway.central.api import create_central_app
from gateway.central.server import open_store
from gateway.tokens import open_tokens

BOOTSTRAP = "gateway-bootstrap-token"


@dataclass
class _Api:
    name: str
    client: httpx.AsyncClient
    token: str

    async def call(
        self, method: str, url: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.request(method, url, headers=headers, **kwargs)


@pytest.fixture
async def apis(tmp_path: Path) -> AsyncIterator[tuple[_Api, _Api]]:
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="errors", data_dir=tmp_path / "gw"
    )
    profiles = ProfileRegistry.load(default_profile_dir())
    agent = Agent(config, profiles, DeviceRegistry(), [], FakeClock())
    central_dir = tmp_path / "central"
    store = open_store(f"sqlite:///{tmp_path / 'central.db'}")
    tokens = open_tokens(central_dir)
    audit = open_audit(central_dir)
    central_token = tokens.create("admin", ["*"], "test admin")[1]
    # a brake of three failures a minute, so the 429 is reached in a few calls
    gateway_app = create_app(agent, BOOTSTRAP, auth_failures_per_minute=3)
    central_app = create_central_app(store, tokens, audit, auth_failures_per_minute=3)
    async with (
        agent,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gateway_app), base_url="http://gateway"
        ) as gateway_client,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=central_app), base_url="http://central"
        ) as central_client,
    ):
        yield (
            _Api("gateway", gateway_client, BOOTSTRAP),
            _Api("central", central_client, central_token),
        )
    store.close()
    tokens.close()
    audit.close()


async def _both(
    apis: tuple[_Api, _Api], method: str, url: str, authenticated: bool = True, **kwargs: Any
) -> tuple[httpx.Response, httpx.Response]:
    gateway, central = apis
    return (
        await gateway.call(method, url, gateway.token if authenticated else None, **kwargs),
        await central.call(method, url, central.token if authenticated else None, **kwargs),
    )


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "details"}, error
    return error


async def test_a_method_a_path_does_not_take_is_405_with_the_allowed_methods(
    apis: tuple[_Api, _Api],
) -> None:
    gateway, central = await _both(apis, "DELETE", "/v1/alerts")
    assert gateway.status_code == central.status_code == 405
    assert _error(gateway) == _error(central)
    assert _error(gateway)["code"] == "method_not_allowed"
    assert gateway.headers["Allow"] == central.headers["Allow"] == "GET"


async def test_a_body_over_the_cap_is_413_before_routing(apis: tuple[_Api, _Api]) -> None:
    too_large = b"x" * (1024 * 1024 + 1)  # both apps keep the default cap, 1 MiB
    gateway, central = await _both(apis, "POST", "/v1/alert-events", content=too_large)
    assert gateway.status_code == central.status_code == 413
    assert _error(gateway) == _error(central)
    assert _error(gateway)["code"] == "too_large"


async def test_no_token_is_401_and_repeated_failures_meet_the_same_brake(
    apis: tuple[_Api, _Api],
) -> None:
    gateway, central = await _both(apis, "GET", "/v1/alerts", authenticated=False)
    assert gateway.status_code == central.status_code == 401
    assert _error(gateway) == _error(central)
    assert _error(gateway)["code"] == "unauthorized"
    assert gateway.headers["WWW-Authenticate"] == central.headers["WWW-Authenticate"] == "Bearer"
    for _ in range(2):
        await _both(apis, "GET", "/v1/alerts", authenticated=False)
    gateway, central = await _both(apis, "GET", "/v1/alerts")  # a good token, too late
    assert gateway.status_code == central.status_code == 429
    assert _error(gateway) == _error(central)
    assert _error(gateway)["code"] == "too_many_requests"
    assert int(gateway.headers["Retry-After"]) >= 1
    assert int(central.headers["Retry-After"]) >= 1


async def test_an_invalid_query_is_422_with_where_and_what(apis: tuple[_Api, _Api]) -> None:
    gateway, central = await _both(apis, "GET", "/v1/alerts", params={"limit": 0})
    assert gateway.status_code == central.status_code == 422
    assert _error(gateway) == _error(central)
    assert _error(gateway)["code"] == "invalid_request"
    assert _error(gateway)["message"].startswith("query.limit: ")
    assert _error(gateway)["details"][0]["where"] == "query.limit"


async def test_a_body_that_is_not_json_is_400_malformed_json(apis: tuple[_Api, _Api]) -> None:
    """Not 422 "body.9: JSON decode error" (trial #7): the body is broken, not invalid."""
    gateway, central = apis
    body = b'{"note": oops}'
    json_type = {"Content-Type": "application/json"}
    answers = [
        await gateway.client.post(
            "/v1/alerts/a1/ack",
            content=body,
            headers={**json_type, "Authorization": f"Bearer {gateway.token}"},
        ),
        await central.client.post(
            "/v1/alert-events",
            content=body,
            headers={**json_type, "Authorization": f"Bearer {central.token}"},
        ),
    ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert _error(answer)["code"] == "bad_request"
        assert _error(answer)["message"].startswith("malformed JSON: ")
        assert "(at character 9)" in _error(answer)["message"]


async def test_an_unknown_path_is_404(apis: tuple[_Api, _Api]) -> None:
    gateway, central = await _both(apis, "GET", "/v1/nothing-here")
    assert gateway.status_code == central.status_code == 404
    assert _error(gateway) == _error(central)
    assert _error(gateway)["code"] == "not_found"
