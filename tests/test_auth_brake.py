"""#20 findings 5 and 7: the failed-auth brake counts per address and per credential, believes
X-Forwarded-For only from configured proxies (`api.trusted_proxies`, none by default) on both the
gateway's and the central API's servers, and logs failures without secrets.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from gateway.auth import Authenticator, Throttled, Unauthenticated
from gateway.central.server import serve_central
from gateway.limits import AuthFailureLimiter
from gateway.settings import ConfigurationError, load_settings
from gateway.tokens import TokenStore
from gateway.wiring import serve
from tests.servers import MosquittoServer

BOOTSTRAP = "bootstrap-admin-token-for-the-brake"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("COMMUNITY_EDGE_"):
            monkeypatch.delenv(name)


def _authenticator(tmp_path: Path, limit: int = 3) -> tuple[Authenticator, TokenStore]:
    tokens = TokenStore(tmp_path / "tokens.db")
    limiter = AuthFailureLimiter(max_failures=limit, window_s=60, clock=_Clock())
    return Authenticator(BOOTSTRAP, tokens, limiter), tokens


def _guess(token_id: str) -> str:
    return f"ce_{token_id}_{'x' * 43}"


def test_guessing_one_token_from_rotating_addresses_meets_the_brake(tmp_path: Path) -> None:
    auth, tokens = _authenticator(tmp_path)
    token_id, token = tokens.create("duty_officer", ["a"])
    for n in range(3):
        with pytest.raises(Unauthenticated):
            auth.authenticate(_guess(token_id), f"198.51.100.{n}")
    with pytest.raises(Throttled):  # a fourth address, the same token id: braked
        auth.authenticate(_guess(token_id), "198.51.100.99")
    # another token's holder, from yet another address, is not affected
    _, other = tokens.create("duty_officer", ["a"])
    assert auth.authenticate(other, "198.51.100.100").role == "duty_officer"
    # nor the guessed token's holder, who had not used it before: the secret is what counts...
    with pytest.raises(Throttled):
        auth.authenticate(token, "203.0.113.5")  # ...so a never-used token waits like a guess


def test_a_guesser_behind_a_shared_address_does_not_lock_out_its_known_tokens(
    tmp_path: Path,
) -> None:
    """On the old brake ten failures from a NAT's address locked out every duty officer behind it."""
    auth, tokens = _authenticator(tmp_path)
    _, officer = tokens.create("duty_officer", ["a"])
    nat = "203.0.113.7"
    assert auth.authenticate(officer, nat).role == "duty_officer"  # a shift that started earlier
    assert auth.authenticate(BOOTSTRAP, nat).role == "admin"
    for n in range(5):  # one guesser, new token each time
        with pytest.raises((Unauthenticated, Throttled)):
            auth.authenticate(f"guess-{n}", nat)
    with pytest.raises(Throttled):
        auth.authenticate("guess-again", nat)
    assert auth.authenticate(officer, nat).role == "duty_officer"
    assert auth.authenticate(BOOTSTRAP, nat).role == "admin"
    # a known token revoked meanwhile is refused and counted like any failure
    token_id = officer.split("_")[1]
    tokens.revoke(token_id)
    with pytest.raises(Unauthenticated):
        auth.authenticate(officer, nat)
    with pytest.raises(Throttled):
        auth.authenticate(officer, nat)


def test_failures_are_logged_with_address_and_token_id_never_the_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    auth, tokens = _authenticator(tmp_path)
    token_id, _ = tokens.create("duty_officer", ["a"])
    wrong = _guess(token_id)
    with caplog.at_level(logging.WARNING, logger="gateway.auth"):
        for _ in range(3):
            with pytest.raises(Unauthenticated):
                auth.authenticate(wrong, "192.0.2.1")
        with pytest.raises(Unauthenticated):
            auth.authenticate(None, "192.0.2.2")
        with pytest.raises(Unauthenticated):
            auth.authenticate("ce_short_secretpart", "192.0.2.3")
        with pytest.raises(Unauthenticated):
            auth.authenticate("wrong", "192.0.2.4")
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == f"failed authentication from 192.0.2.1: token {token_id}"
    assert f"credential:{token_id} braked for 60 s after 3 failed authentications" in messages
    assert "failed authentication from 192.0.2.2: no token" in messages
    assert "failed authentication from 192.0.2.3: not a token" in messages
    # not a scoped token: no name is known, so none is given (not the bootstrap token's)
    assert "failed authentication from 192.0.2.4: an unknown token" in messages
    text = "\n".join(messages)
    assert "x" * 43 not in text
    assert "secretpart" not in text


@pytest.mark.parametrize("entry", ["*", "proxy.example", "10.0.0.300"])
def test_trusted_proxies_are_addresses_or_networks(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        load_settings(overrides={"api.trusted_proxies": ["10.0.0.5", entry]})
    assert load_settings(overrides={"api.trusted_proxies": ["10.0.0.0/24", "::1"]})


async def _rotate(url: str, count: int) -> list[int]:
    """`count` wrong tokens, each claiming another address in X-Forwarded-For."""
    async with httpx.AsyncClient(base_url=url) as client:
        statuses = []
        for n in range(count):
            response = await client.get(
                "/v1/alerts",
                headers={"Authorization": f"Bearer guess-{n}", "X-Forwarded-For": f"10.9.0.{n}"},
            )
            statuses.append(response.status_code)
    return statuses


def _brake_addresses(caplog: pytest.LogCaptureFixture) -> set[str]:
    return {
        r.getMessage().split(" from ")[1].split(":")[0]
        for r in caplog.records
        if r.getMessage().startswith("failed authentication from ")
    }


@asynccontextmanager
async def _gateway(
    tmp_path: Path, broker: MosquittoServer, trusted: list[str]
) -> AsyncIterator[str]:
    settings = load_settings(
        overrides={
            "mqtt.url": broker.url,
            "mqtt.client_id": f"brake-{len(trusted)}",
            "api.port": 0,
            "api.token": BOOTSTRAP,
            "api.auth_failures_per_minute": 3,
            "api.trusted_proxies": trusted,
            "data_dir": tmp_path / "data",
        }
    )
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop, lambda _, url: ready.set_result(url)))
    try:
        yield await asyncio.wait_for(ready, 30)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def _central(tmp_path: Path, trusted: list[str] | None) -> AsyncIterator[str]:
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    run = serve_central(
        f"sqlite:///{tmp_path / 'central.db'}",
        tmp_path,
        "127.0.0.1",
        0,
        stop,
        ready.set_result,
        auth_failures_per_minute=3,
        trusted_proxies=trusted,
    )
    task = asyncio.create_task(run)
    try:
        yield await asyncio.wait_for(ready, 30)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_the_gateway_believes_no_forwarded_address_by_default(
    tmp_path: Path, mosquitto: MosquittoServer, caplog: pytest.LogCaptureFixture
) -> None:
    """On the old server start uvicorn believed X-Forwarded-For from loopback: 40 x 401, no 429."""
    with caplog.at_level(logging.WARNING, logger="gateway.auth"):
        async with _gateway(tmp_path, mosquitto, []) as url:
            statuses = await _rotate(url, 6)
    assert statuses == [401] * 3 + [429] * 3
    assert _brake_addresses(caplog) == {"127.0.0.1"}


async def test_the_gateway_believes_a_configured_proxy(
    tmp_path: Path, mosquitto: MosquittoServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.auth"):
        async with _gateway(tmp_path, mosquitto, ["127.0.0.1"]) as url:
            statuses = await _rotate(url, 6)
    # every address is new, but every guess aims at the bootstrap token: braked on that
    assert statuses == [401] * 3 + [429] * 3
    assert _brake_addresses(caplog) == {"10.9.0.0", "10.9.0.1", "10.9.0.2"}


async def test_the_central_api_believes_no_forwarded_address_by_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.auth"):
        async with _central(tmp_path, []) as url:
            statuses = await _rotate(url, 6)
    # the central API has no bootstrap token: only the address can brake these guesses
    assert statuses == [401] * 3 + [429] * 3
    assert _brake_addresses(caplog) == {"127.0.0.1"}


async def test_the_central_api_believes_a_configured_proxy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.auth"):
        async with _central(tmp_path, ["127.0.0.0/8"]) as url:
            statuses = await _rotate(url, 6)
    assert statuses == [401] * 6  # six addresses, no token aimed at: each its own count
    assert _brake_addresses(caplog) == {f"10.9.0.{n}" for n in range(6)}
