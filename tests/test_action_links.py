"""Action links over a real agent, in-process: opening a link acts on nothing, the button acts once
under the person's name, and an altered, expired, replayed or foreign link changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from edge.agent import Agent, AgentConfig
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from gateway.action_links import ActionLinks, LinkAction, LinkRefused
from gateway.api import create_app
from gateway.audit import AuditLog
from tests.test_api import PROFILES, SOS, TOKEN, _clock, _Gateway, _sos


class _World:
    def __init__(self, gateway: _Gateway, links: ActionLinks, audit: AuditLog) -> None:
        self.gateway, self.links, self.audit = gateway, links, audit

    def link(self, alert_id: str, action: LinkAction = LinkAction.ACKNOWLEDGE, **kw: float) -> str:
        valid = timedelta(minutes=kw.get("minutes", 15))
        now = datetime.now(UTC) - timedelta(minutes=kw.get("ago", 0))
        return "/a/" + self.links.issue(
            alert_id, action, "li-wei", "李伟", now=now, valid_for=valid
        )

    async def status(self, alert_id: str) -> tuple[str, str | None]:
        alert = (await self.gateway.get(f"/v1/alerts/{alert_id}")).json()["alert"]
        return alert["status"], alert["acknowledged_by"]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    data = tmp_path / "data"
    clock = _clock()
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="links", data_dir=data
    )
    agent = Agent(config, PROFILES, DeviceRegistry(), [], clock)
    links = ActionLinks(data)
    audit = AuditLog(tmp_path / "audit.db")
    async with agent:
        app = create_app(agent, TOKEN, audit=audit, action_links=links)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield _World(_Gateway(agent, clock, client), links, audit)
    links.close()
    audit.close()


async def test_opening_a_link_shows_the_alert_and_changes_nothing(world: _World) -> None:
    alert_id = await world.gateway.open_alert(_sos("sos-1"), SOS)
    url = world.link(alert_id)
    for _ in range(3):  # a chat app's preview, a mail scanner, the person
        page = await world.gateway.client.get(url)
        assert page.status_code == 200
        assert "确认接警" in page.text
        assert "李伟" in page.text
        assert f'action="{url}"' in page.text
        assert f'href="/console/alerts/{alert_id}"' in page.text  # the whole story, signed in
    assert "script-src" not in page.headers["content-security-policy"]  # none: default-src 'none'
    # the community's time (the console's default zone), with its offset; Chinese first
    opened = world.gateway.agent.alert_store.get(alert_id).opened_at  # type: ignore[union-attr]
    local = opened.astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"{local:%Y-%m-%d %H:%M:%S} (UTC+08:00)" in page.text
    assert " UTC<" not in page.text
    assert page.text.index("紧急按钮被按下") < page.text.index("Emergency button pressed")
    assert page.headers["cache-control"] == "no-store"
    assert await world.status(alert_id) == ("active", None)


async def test_the_button_acts_once_under_the_persons_name(world: _World) -> None:
    alert_id = await world.gateway.open_alert(_sos("sos-1"), SOS)
    url = world.link(alert_id)
    done = await world.gateway.client.post(url)
    assert done.status_code == 200
    assert await world.status(alert_id) == ("acknowledged", "李伟")
    history = (await world.gateway.get(f"/v1/alerts/{alert_id}")).json()["history"]
    assert [(e["kind"], e["actor"]) for e in history] == [
        ("opened", "rule"),
        ("acknowledged", "李伟"),
    ]
    again = await world.gateway.client.post(url)
    assert again.status_code == 409
    assert "已使用" in again.text
    opened_after = await world.gateway.client.get(url)
    assert opened_after.status_code == 409
    assert [(r.actor, r.action) for r in world.audit.query(action="link_ack")] == [
        ("person:li-wei", "link_ack")
    ]


async def test_two_presses_at_once_act_once(world: _World) -> None:
    alert_id = await world.gateway.open_alert(_sos("sos-1"), SOS)
    url = world.link(alert_id)
    first, second = await asyncio.gather(
        world.gateway.client.post(url), world.gateway.client.post(url)
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    history = (await world.gateway.get(f"/v1/alerts/{alert_id}")).json()["history"]
    assert [e["kind"] for e in history] == ["opened", "acknowledged"]


async def test_a_second_persons_link_after_the_first_acted_says_who_did(world: _World) -> None:
    alert_id = await world.gateway.open_alert(_sos("sos-1"), SOS)
    mine = world.link(alert_id)
    theirs = "/a/" + world.links.issue(
        alert_id,
        LinkAction.ACKNOWLEDGE,
        "wang-fang",
        "王芳",
        now=datetime.now(UTC),
        valid_for=timedelta(minutes=15),
    )
    assert (await world.gateway.client.get(theirs)).status_code == 200  # both on the page
    assert (await world.gateway.client.post(mine)).status_code == 200
    late = await world.gateway.client.post(theirs)
    assert late.status_code == 409
    assert "李伟" in late.text
    assert await world.status(alert_id) == ("acknowledged", "李伟")


@pytest.mark.parametrize("action", [LinkAction.ON_MY_WAY, LinkAction.RESOLVE])
async def test_on_my_way_and_resolve(world: _World, action: LinkAction) -> None:
    alert_id = await world.gateway.open_alert(_sos("sos-1"), SOS)
    assert (await world.gateway.client.post(world.link(alert_id, action))).status_code == 200
    alert = (await world.gateway.get(f"/v1/alerts/{alert_id}")).json()["alert"]
    if action is LinkAction.ON_MY_WAY:
        assert (alert["status"], alert["assignee"], alert["acknowledged_by"]) == (
            "acknowledged",
            "李伟",
            "李伟",
        )
    else:
        assert (alert["status"], alert["resolved_by"]) == ("resolved", "李伟")


async def test_an_altered_expired_or_foreign_link_changes_nothing(world: _World) -> None:
    alert_id = await world.gateway.open_alert(_sos("sos-1"), SOS)
    url = world.link(alert_id)
    body, _, signature = url.removeprefix("/a/").partition(".")
    flipped = "/a/" + body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + signature
    expired = world.link(alert_id, minutes=5, ago=6)
    foreign = "/a/" + ActionLinks(world.gateway.agent.config.data_dir.parent / "other").issue(
        alert_id, LinkAction.ACKNOWLEDGE, "x", "X", now=datetime.now(UTC), valid_for=timedelta(1)
    )
    answers = {}
    for name, bad in {"altered": flipped, "expired": expired, "foreign": foreign,
                      "garbage": "/a/not-a-token"}.items():  # fmt: skip
        answers[name] = ((await world.gateway.client.get(bad)).status_code,
                         (await world.gateway.client.post(bad)).status_code)  # fmt: skip
    assert answers == {
        "altered": (404, 404),
        "expired": (410, 410),
        "foreign": (404, 404),
        "garbage": (404, 404),
    }
    assert await world.status(alert_id) == ("active", None)


async def test_a_used_link_stays_used_after_a_restart(tmp_path: Path) -> None:
    links = ActionLinks(tmp_path)
    token = links.issue(
        "a1", LinkAction.ACKNOWLEDGE, "p", "P", now=datetime.now(UTC), valid_for=timedelta(1)
    )
    links.consume(token, datetime.now(UTC))
    links.close()
    reopened = ActionLinks(tmp_path)  # same secret, same record of used links
    with pytest.raises(LinkRefused, match="used"):
        reopened.verify(token, datetime.now(UTC))
    assert (tmp_path / "action-link-secret").stat().st_mode & 0o777 == 0o600
    reopened.close()


def test_community_edge_links_issue_prints_a_link_that_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    args = ["links", "issue", "--data-dir", str(tmp_path), "--alert", "a-1", "--person", "li-wei"]
    assert (
        main([*args, "--name", "李伟", "--action", "resolve", "--base-url", "http://gw:8080"]) == 0
    )
    url = capsys.readouterr().out.strip()
    assert url.startswith("http://gw:8080/a/")
    links = ActionLinks(tmp_path)
    claim = links.verify(url.rsplit("/", 1)[1], datetime.now(UTC))
    assert (claim.alert_id, claim.action, claim.person_name) == ("a-1", LinkAction.RESOLVE, "李伟")
    links.close()
    assert main([*args, "--name", "x", "--minutes", "0"]) == 2
