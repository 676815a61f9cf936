"""Two group-robot channels, one down: a WeCom robot unreachable while SOS alerts open and are
acknowledged, a signed DingTalk robot up. DingTalk receives every alert event exactly once while
WeCom is down (a failing channel blocks no other); once WeCom is back it catches up: every event,
except the calls to action about alerts someone acknowledged meanwhile (rules of reach: whoever took
an alert stops every queued message about it), which are recorded as skipped, not sent;
`GET /v1/alerts/{id}` shows each channel's attempts.

The agent runs as users run it (`community-edge run --config FILE`) against a real mosquitto; the
robot endpoints are local stand-ins that check body format and (DingTalk) the signature as the
vendors do. Fewer than 20 events per channel: no wait for the rate window.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from edge.sinks.channels.message import KIND_LABEL
from tests.agent_process import AgentProcess, wait_for
from tests.mqtt_publisher import publish
from tests.robot_receivers import RobotReceiver, RobotRequest
from tests.servers import MosquittoServer, free_port

KEY = "outage-wecom-KEY-4bc4"
TOKEN = "outage-dingtalk-TOKEN-ff6c"
SECRET = "SECoutage0123456789abcdef"
PRESSES = 12
ACKS = 4
OUTAGE_S = 5.0
DEPTH = "community_edge_outbox_depth"
SENT = "community_edge_channel_sent_total"
_KIND = {label: kind.value for kind, label in KIND_LABEL.items()}
_SINGLE = re.compile(r"】(?P<kind>[^*]+)\*\*.*告警编号 Alert: (?P<id>\S+)", re.S)


def _press_buttons(mqtt_url: str, community: str, count: int) -> int:
    presses = [
        (
            f"ce/{community}/b1/tuya-sos-button/sos-{number:02d}",
            {"action": "emergency", "battery": 80, "ts": time.time_ns() // 10**6, "seq": 1},
        )
        for number in range(count)
    ]
    return publish(mqtt_url, presses)


def _notified(requests: list[RobotRequest]) -> list[tuple[str, str]]:
    """(alert id, kind) of every event in every accepted message, singles and digests."""
    out: list[tuple[str, str]] = []
    for request in requests:
        if request.errcode != 0:
            continue
        text = request.text.replace("\n\n", "\n")
        if "告警汇总" in text.splitlines()[0]:
            for line in text.splitlines()[1:]:
                head, *_, alert_id = line.removeprefix("> ").split(" · ")
                out.append((alert_id, _KIND[head.split("】", 1)[1]]))
        else:
            found = _SINGLE.search(text)
            assert found is not None, text
            out.append((found["id"], _KIND[found["kind"].strip()]))
    return out


def test_one_robot_down_blocks_no_other_and_catches_up(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    community = "fault-channel-outage"
    wecom = RobotReceiver("wecom", KEY, port=free_port())  # not started: nothing listens there
    dingtalk = RobotReceiver("dingtalk", TOKEN, SECRET)
    dingtalk.start()  # first: its port is chosen when it starts
    config = tmp_path / "gateway.yaml"
    config.write_text(
        json.dumps(
            {
                "notifications": {"public_url": "https://gw.example"},
                "channels": [
                    {
                        "name": "duty-wecom",
                        "type": "wecom",
                        "key": KEY,
                        "base_url": wecom.base_url,
                        "route": {"communities": [community]},
                    },
                    {
                        "name": "duty-dingtalk",
                        "type": "dingtalk",
                        "token": TOKEN,
                        "secret": SECRET,
                        "base_url": dingtalk.base_url,
                        "route": {"min_severity": "major"},
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    agent = AgentProcess(tmp_path / "agent", mosquitto.url, ["--config", str(config)])
    try:
        with agent:
            down_since = time.monotonic()
            assert _press_buttons(mosquitto.url, community, PRESSES) == PRESSES
            alerts = wait_for(
                lambda: (
                    len(found := agent.get("/v1/alerts", community=community)["items"]) == PRESSES
                    and found
                ),
                what=f"{PRESSES} SOS alerts",
            )
            ids = sorted(a["id"] for a in alerts)
            for alert_id in ids[:ACKS]:
                response = agent.post(f"/v1/alerts/{alert_id}/ack", {"note": "on my way"})
                assert response.status_code == 200, response.text
            expected = Counter(
                [(a, "opened") for a in ids] + [(a, "acknowledged") for a in ids[:ACKS]]
            )
            # WeCom was down when the alerts opened: by the time it is back, the opened messages of
            # the acknowledged alerts are stale and skipped; their acknowledgements are sent
            caught_up = expected - Counter([(a, "opened") for a in ids[:ACKS]])

            # DingTalk has every event while WeCom is still down
            wait_for(
                lambda: Counter(_notified(dingtalk.requests)) == expected,
                what="every event at the DingTalk robot",
            )
            assert wecom.requests == []

            def recorded() -> set[tuple[str, str, str]]:
                deliveries = agent.get(f"/v1/alerts/{ids[0]}")["deliveries"]
                return {(d["sink"], d["kind"], d["result"]) for d in deliveries}

            # the log is written once the robot has answered: just after the message arrived
            wait_for(
                lambda: (
                    {
                        ("duty-dingtalk", "opened", "delivered"),
                        ("duty-dingtalk", "acknowledged", "delivered"),
                    }
                    <= recorded()
                ),
                what="DingTalk deliveries recorded",
            )
            detail = agent.get(f"/v1/alerts/{ids[0]}")
            failed = wait_for(
                lambda: next(
                    (
                        d
                        for d in agent.get(f"/v1/alerts/{ids[0]}")["deliveries"]
                        if d["sink"] == "duty-wecom" and d["result"] == "failed"
                    ),
                    None,
                ),
                what="a failed WeCom attempt recorded",
            )
            assert "unreachable" in failed["reason"]
            assert KEY not in json.dumps(detail)

            # the point: the outage lasts OUTAGE_S, the forwarder backing off meanwhile
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_since)))
            wecom.start()
            wait_for(
                lambda: Counter(_notified(wecom.requests)) == caught_up,
                within_s=45,
                what="WeCom caught up with every event",
            )
            # nothing more can trail in once both outboxes owe nothing and every send is counted
            # and logged: the positive marker for "no duplicates" below
            events = {
                "duty-wecom": sum(caught_up.values()),
                "duty-dingtalk": sum(expected.values()),
            }
            metrics = wait_for(
                lambda: (
                    all(
                        (m := agent.metrics()).get(f'{DEPTH}{{lane="events",sink="{sink}"}}') == 0
                        and m.get(f'{SENT}{{sink="{sink}"}}') == sent
                        for sink, sent in events.items()
                    )
                    and agent.metrics()
                ),
                what="both channels' outboxes empty and every event sent",
            )
            wait_for(
                lambda: (
                    {
                        ("duty-wecom", "opened", "skipped"),
                        ("duty-wecom", "acknowledged", "delivered"),
                    }
                    <= recorded()
                ),
                what="WeCom deliveries recorded",
            )
            final: dict[str, Any] = agent.get(f"/v1/alerts/{ids[0]}")
    finally:
        wecom.close()
        dingtalk.close()

    assert Counter(_notified(dingtalk.requests)) == expected  # exactly once each
    assert Counter(_notified(wecom.requests)) == caught_up
    assert all(r.errcode == 0 for r in dingtalk.requests)  # every signature verified
    assert all(r.errcode == 0 for r in wecom.requests)
    assert all(r.body["msgtype"] == "markdown" for r in wecom.requests)
    assert all(
        "https://gw.example/console/alerts/" in r.text
        for r in wecom.requests
        if "汇总" not in r.text
    )
    for sink, sent in events.items():
        assert metrics[f'community_edge_channel_sent_total{{sink="{sink}"}}'] == sent
    assert metrics['community_edge_channel_skipped_total{sink="duty-wecom"}'] == ACKS
    assert metrics['community_edge_channel_skipped_total{sink="duty-dingtalk"}'] == 0
    results = Counter((d["sink"], d["result"]) for d in final["deliveries"])
    assert results[("duty-wecom", "delivered")] == 1  # the acknowledgement
    assert results[("duty-wecom", "skipped")] == 1  # its stale opened message
    skipped = next(d for d in final["deliveries"] if d["result"] == "skipped")
    assert skipped["reason"].startswith("not sent: acknowledged by"), skipped
    assert results[("duty-dingtalk", "delivered")] == 2
    assert results[("duty-wecom", "failed")] >= 1
    attempts = sum(
        d["attempts"]
        for d in final["deliveries"]
        if d["sink"] == "duty-wecom" and d["result"] == "failed"
    )
    print(
        f"channel outage {OUTAGE_S:.0f} s: {sum(expected.values())} events, DingTalk "
        f"{len(dingtalk.requests)} messages, WeCom {len(wecom.requests)} after it came back; "
        f"WeCom failed attempts at the first alert's events: {attempts}"
    )
