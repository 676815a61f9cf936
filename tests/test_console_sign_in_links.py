"""One-time sign-in links (`community-edge demo` prints one): a code signs a browser in once, as
its person, within its time; a spent, expired or unknown code is a page that says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from gateway.api import create_app
from gateway.console.catalogue import WORDS
from gateway.console.sign_in_links import SignInLinks
from gateway.tokens import TokenStore


def test_a_code_is_good_once_and_only_in_time() -> None:
    links = SignInLinks()
    code = links.issue("token-1", "王芳")
    assert links.path(code) == f"/console/sign-in/link?code={code}"
    assert links.spend(code) == ("token-1", "王芳")
    assert links.spend(code) is None  # spent
    assert links.spend("never-issued") is None
    late = SignInLinks(ttl_s=0.0)
    stale = late.issue("token-2", "李")
    assert late.spend(stale) is None  # expired (no time at all to use it)


async def test_the_link_signs_in_once_then_says_it_is_spent(tmp_path: Path) -> None:
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    agent = Agent(config, ProfileRegistry.load(default_profile_dir()), DeviceRegistry(), [], clock)
    tokens = TokenStore(tmp_path / "tokens.db")
    _, token = tokens.create("duty_officer", ["a"], name="王芳")
    links = SignInLinks()
    try:
        async with agent:
            app = create_app(agent, "bootstrap", tokens=tokens, sign_in_links=links)
            transport = httpx.ASGITransport(app=app)
            code = links.issue(token, "王芳")
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as browser:
                signed = await browser.get(links.path(code))
                assert signed.status_code == 303
                assert signed.headers["location"] == "/console/"
                cookie = signed.headers["set-cookie"]
                assert "HttpOnly" in cookie
                assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
                board = await browser.get("/console/")
                assert board.status_code == 200
                assert "王芳" in board.text
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as other:
                again = await other.get(links.path(code))
                assert again.status_code == 410
                assert WORDS["zh"]["link_spent"] in again.text
                assert "set-cookie" not in again.headers
                assert (await other.get("/console/")).status_code == 303  # not signed in
    finally:
        tokens.close()
