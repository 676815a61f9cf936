"""Whether an escalation step reaches anyone through the gateway's channels (gateway/reach.py):
no channel at all, no route that takes it, every channel that takes it failing; a platform's
webhook feed is not a way to reach a person."""

from __future__ import annotations

from pathlib import Path

from edge.model import RawMessage
from edge.sinks import Channel, Route
from edge.sinks.memory import MemorySink
from gateway.reach import ChannelReach
from gateway.settings import load_settings
from gateway.wiring import build_gateway
from tests.factories import opened_event


def _channel(name: str, route: Route | None) -> Channel:
    return Channel(MemorySink(name, frozenset({"events"})), route, None)


def test_no_channel_at_all_is_the_console_only() -> None:
    reach = ChannelReach([_channel("platform", None)])  # a webhook feed does not count
    assert reach.console_only
    assert reach.unreached(opened_event(1)) == (
        "no notification channel is configured (channels:): the console only"
    )


def test_no_route_takes_it_names_each_refusal() -> None:
    reach = ChannelReach([_channel("wecom-c2", Route(communities=frozenset({"c2"})))])
    assert not reach.console_only
    assert reach.unreached(opened_event(1)) == "no channel takes it (wecom-c2: route: community c1)"


def test_every_channel_that_takes_it_failing_and_one_that_works() -> None:
    wecom, dingtalk = _channel("wecom", Route()), _channel("dingtalk", Route())
    reach = ChannelReach([wecom, dingtalk])
    wecom.failing = "wecom robot wecom unreachable: ConnectError"
    assert reach.unreached(opened_event(1)) is None  # DingTalk still carries it
    dingtalk.failing = "dingtalk robot dingtalk answered errcode 310000"
    assert reach.unreached(opened_event(1)) == (
        "every channel that takes it is failing (wecom: wecom robot wecom unreachable: "
        "ConnectError; dingtalk: dingtalk robot dingtalk answered errcode 310000)"
    )


async def test_the_wiring_asks_the_running_agent_who_took_an_alert(tmp_path: Path) -> None:
    # the channels are built before the agent: they must still reach the agent that runs
    path = tmp_path / "settings.yaml"
    path.write_text(
        f'data_dir: "{tmp_path / "data"}"\n'
        "channels: [{name: duty, type: wecom, key: k, base_url: 'http://127.0.0.1:1'}]\n",
        encoding="utf-8",
    )
    gateway = build_gateway(load_settings(path))
    (channel,) = [s for s in gateway.agent._remote_sinks if isinstance(s, Channel)]
    async with gateway.agent as agent:
        raw = RawMessage(
            topic="ce/c1/b1/tuya-sos-button/sos-1",
            payload=b'{"action": "emergency"}',
            received_at=agent.clock.now(),
        )
        (opened,) = agent.pipeline.handle(raw).events
        assert channel.refusal(opened) is None
        assert "no channel takes it" not in (opened.note or "")
        agent.alerts.acknowledge(opened.alert.id, "王芳")
        assert channel.refusal(opened) == "not sent: acknowledged by 王芳"
    assert gateway.links is not None
    gateway.links.close()
