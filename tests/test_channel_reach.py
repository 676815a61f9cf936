"""Whether an escalation step reaches anyone through the gateway's channels (gateway/reach.py):
no channel at all, no route that takes it, every channel that takes it failing; a platform's
webhook feed is not a way to reach a person."""

from __future__ import annotations

from edge.sinks import Channel, Route
from edge.sinks.memory import MemorySink
from gateway.reach import ChannelReach
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
