"""A notification receiver (signed webhook) down while SOS alerts open and are acknowledged and
resolved, with the agent SIGKILLed and restarted in the middle: once the receiver is back, every
alert event arrives at least once, signed, and exactly once after deduplication by event id.

The agent runs as users run it (`community-edge run`), its webhook configured through the
environment (`COMMUNITY_EDGE_WEBHOOKS`, JSON). The receiver's port is chosen up front and nothing
listens on it until the receiver starts; its first answer then is lost (503 after it recorded the
batch), so the duplicates a receiver must expect are really sent. Figures are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.agent_process import AgentProcess, wait_for
from tests.mqtt_publisher import publish
from tests.servers import MosquittoServer, free_port
from tests.test_webhook import Received, Receiver

SECRET = "fault-webhook-SECRET-9f8e7d6c"
PRESSES = 20
OUTAGE_S = 6.0  # long enough for the forwarder's backoff (0.5 s, doubling) to reach seconds
SINK = "webhook-1"  # the default name of the first configured webhook
DEPTH = f'community_edge_outbox_depth{{lane="events",sink="{SINK}"}}'
ERRORS = f'community_edge_sink_errors_total{{sink="{SINK}"}}'


def _press_buttons(mqtt_url: str, community: str, count: int) -> int:
    """One SOS press from each of `count` buttons, QoS 1; returns how many the broker acked."""
    presses = [
        (
            f"ce/{community}/b1/tuya-sos-button/sos-{number:02d}",
            {"action": "emergency", "battery": 80, "ts": time.time_ns() // 10**6, "seq": 1},
        )
        for number in range(count)
    ]
    return publish(mqtt_url, presses)


def _alerts(agent: AgentProcess, community: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = agent.get("/v1/alerts", community=community, limit=100)["items"]
    return items


def _act(agent: AgentProcess, alert_id: str, action: str) -> None:
    response = agent.post(f"/v1/alerts/{alert_id}/{action}", {"note": "webhook outage test"})
    assert response.status_code == 200, response.text


def _failing(agent: AgentProcess, backlog: int) -> float:
    """Wait until the webhook's backlog is `backlog` and its errors keep growing; the errors."""
    wait_for(lambda: agent.metrics()[DEPTH] == backlog, what=f"webhook backlog {backlog}")
    first = wait_for(lambda: agent.metrics()[ERRORS], what="webhook errors")
    return float(wait_for(lambda: agent.metrics()[ERRORS] > first and agent.metrics()[ERRORS]))


def test_a_webhook_receiver_outage_and_an_agent_crash_lose_no_alert_event(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    community = "fault-webhook-outage"
    answered: list[int] = []

    def answer(got: Received) -> int:
        # The receiver's first answer after it returns is lost (it stored the batch, then
        # failed): the retry brings every event again, and the receiver deduplicates.
        answered.append(503 if not answered else 200)
        return answered[-1]

    receiver = Receiver(SECRET, answer, port=free_port())  # not started: nothing listens there
    hooks = [{"url": receiver.url, "secret": SECRET}]
    agent = AgentProcess(
        tmp_path / "agent", mosquitto.url, env={"COMMUNITY_EDGE_WEBHOOKS": json.dumps(hooks)}
    )
    try:
        with agent:
            down_since = time.monotonic()
            published = _press_buttons(mosquitto.url, community, PRESSES)
            alerts = wait_for(
                lambda: len(found := _alerts(agent, community)) == PRESSES and found,
                what=f"{PRESSES} SOS alerts",
            )
            ids = sorted(a["id"] for a in alerts)
            for alert_id in ids[:10]:
                _act(agent, alert_id, "ack")
            errors_before_kill = _failing(agent, backlog=PRESSES + 10)

            agent.kill()  # SIGKILL while the receiver is down, with 30 events owed to it
            agent.start()
            for alert_id in ids[5:15]:  # 5 acknowledged and 5 active ones
                _act(agent, alert_id, "resolve")
            _failing(agent, backlog=PRESSES + 20)
            assert agent.get("/readyz")["ready"]  # /readyz turns 503 after 60 s of failure

            history = [e for a in ids for e in agent.get(f"/v1/alerts/{a}")["history"]]
            expected = {e["id"]: e for e in history}
            kinds = Counter(e["kind"] for e in history)
            assert kinds == {"opened": 20, "acknowledged": 10, "resolved": 10}
            assert len(expected) == len(history) == 40

            # the point: the outage lasts OUTAGE_S, the forwarder's backoff growing to seconds
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_since)))
            errors_after_restart = agent.metrics()[ERRORS]
            receiver.start()
            back_at = time.monotonic()
            outage_s = back_at - down_since
            wait_for(lambda: agent.metrics()[DEPTH] == 0, within_s=40, what="webhook backlog 0")
            drained_s = time.monotonic() - back_at
            delivered = agent.metrics()[f'community_edge_sink_delivered_total{{sink="{SINK}"}}']
        received = receiver.received
    finally:
        receiver.close()

    assert published == PRESSES
    assert received, "the receiver got nothing"
    assert all(r.verified for r in received), "a request without a valid, fresh signature"
    assert {r.headers["content-type"] for r in received} == {"application/json"}
    seen = [e for r in received for e in r.events]
    by_id = {e["id"]: e for e in seen}
    duplicates = len(seen) - len(by_id)
    assert by_id == expected  # every event, as the alert store holds it; nothing else
    assert answered[0] == 503
    assert duplicates >= len(received[0].events)  # the batch whose answer was lost came again
    first_arrival = received[0].at - back_at
    last_arrival = received[-1].at - back_at
    print(
        f"webhook outage {outage_s:.1f} s (agent SIGKILLed once): events published "
        f"{len(expected)} ({PRESSES} opened, 10 acknowledged, 10 resolved), delivered "
        f"{len(by_id)} distinct in {len(received)} requests, duplicates {duplicates}, "
        f"failed attempts {errors_before_kill + errors_after_restart:.0f}, sink delivered "
        f"after restart {delivered:.0f}; after the receiver returned: first request "
        f"{first_arrival:.2f} s (answer lost), last {last_arrival:.2f} s, backlog 0 after "
        f"{drained_s:.2f} s"
    )
