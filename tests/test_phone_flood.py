"""Rules of reach on the phone, end to end: `community-edge run` against the local Alibaba SMS
and Tencent voice receivers, through mosquitto.

A flood of 1,000 SOS alarms (tier steps: the channels ring their own `recipients`) rings the one
person at most `per_person_limit` times per channel and then once more with the summary
("N条告警未处理,请查看值班台" and the console board's address); a key press on that summary call
acknowledges nothing. The calls and messages per alert are printed for docs/channels.md.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.agent_process import AgentProcess
from tests.mqtt_publisher import Publisher
from tests.phone_agent import CALLBACK_TOKEN, phone_agent
from tests.phone_receivers import ProviderReceiver, ProviderRequest
from tests.servers import MosquittoServer
from tests.waiting import wait_until

ALERTS = 1000
LIMIT = 5  # notifications.per_person_limit's default, per person and channel in 10 minutes
PRESS = {"action": "emergency", "battery": 80}


def _skipped(agent: AgentProcess, sink: str) -> float:
    return agent.metrics().get(f'community_edge_channel_skipped_total{{sink="{sink}"}}', 0.0)


def _summaries(receiver: ProviderReceiver) -> list[ProviderRequest]:
    return [r for r in receiver.accepted if "条告警未处理" in r.fields["summary"]]


def test_a_flood_of_1000_sos_rings_one_phone_at_most_the_limit_and_one_summary(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    community = "floodp"
    with (
        ProviderReceiver("aliyun", "sms") as sms,
        ProviderReceiver("tencent", "voice") as voice,
        phone_agent(tmp_path, mosquitto, (sms, "sms"), (voice, "call")) as agent,
    ):
        started = time.monotonic()
        with Publisher(mosquitto.url, max_inflight=1000) as publisher:
            publisher.publish_many(
                (f"ce/{community}/b{i % 10}/tuya-sos-button/sos-{i}", PRESS) for i in range(ALERTS)
            )
        # every opened event decided: LIMIT sent, the rest held back (the first of them became
        # the summary), per channel
        for sink in ("sms", "call"):
            wait_until(
                lambda s=sink: _skipped(agent, s) >= ALERTS - LIMIT,  # type: ignore[misc]
                timeout=120,
                poll=0.5,
                what=f"{sink}: every opened event of the flood decided",
            )
        wait_until(lambda: _summaries(sms) and _summaries(voice), timeout=30, what="summaries")
        took = time.monotonic() - started
        metrics = agent.metrics()
        for receiver in (sms, voice):
            summaries = _summaries(receiver)
            assert len(summaries) == 1, [r.fields for r in summaries]
            assert {r.phone[-11:] for r in receiver.requests} == {"13812345678"}
            assert len(receiver.accepted) == LIMIT + 1, len(receiver.accepted)
            (summary,) = summaries
            assert summary.fields["level"] == "多条"
            count = int(summary.fields["summary"].split("条")[0])
            assert LIMIT < count <= ALERTS
        sms_summary = _summaries(sms)[0]
        assert sms_summary.fields["link"] == f"{agent.url}/console/"  # the board
        # pressing 1 on the summary call takes no alert of the flood
        answer = voice.press(agent.url, CALLBACK_TOKEN, _summaries(voice)[0])
        assert answer.json() == {"result": 0, "errmsg": "OK"}
        assert metrics['community_edge_channel_summaries_total{sink="call"}'] == 1
        after = agent.metrics()
        assert after['community_edge_phone_callbacks_total{outcome="acknowledged"}'] == 0
        page = agent.get("/v1/alerts", community=community, status="acknowledged", limit=10)
        assert page["items"] == []
    for name, receiver in (("Alibaba SMS", sms), ("Tencent voice", voice)):
        print(
            f"\nflood of {ALERTS} SOS, one person: {name} {len(receiver.accepted)} requests "
            f"({len(receiver.accepted) / ALERTS:.3f} per alert, summary included), "
            f"all decided in {took:.0f} s"
        )
