"""The network between the broker and the agent cut mid-burst, with exact counts: a cut that
resets the connections (a router restarting) and a silent one (a pulled cable: nothing arrives,
nothing is reset, each end learns of it only by its keep-alive), each longer than the agent's
`broker_lost_after_s`.

The devices keep publishing to the broker, which queues for the agent's persistent sessions.
Whatever the agent committed but whose PUBACK was lost in the cut is sent again after it: each
message must still be one reading committed and one sample in VictoriaMetrics, each SOS press one
alert, one `opened` event and one notification. The operator sees the cut as what it is for the
gateway: one critical `gateway-broker-lost` alert, opened during the cut and resolved by the
reconnection, and the reconnects on `/metrics`. Figures are printed (`pytest -s`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from tests.agent_process import AgentProcess, wait_for
from tests.browser import TcpProxy
from tests.faults.test_crashes import ACKED, REDELIVERED, _broker, _sum, publisher
from tests.faults.test_redeliveries import (
    BURST,
    PRESSES,
    _burst,
    _check,
    _disconnected_sessions,
    _env,
    _outcome,
    _receiver,
    _settle,
    _wait_drained,
)
from tests.servers import MosquittoFactory, VictoriaMetricsFactory

BROKER_LOST = "gateway-broker-lost"
RECONNECTS = "community_edge_mqtt_reconnects_total"


def _broker_lost(agent: AgentProcess) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = agent.get("/v1/alerts", limit=100)["items"]
    return [a for a in alerts if a["rule"] == BROKER_LOST]


@pytest.mark.parametrize("how", ["reset", "silent"])
def test_a_network_cut_mid_burst_yields_each_message_once_and_one_broker_alert(
    how: str,
    tmp_path: Any,
    mosquitto_factory: MosquittoFactory,
    victoria_metrics_factory: VictoriaMetricsFactory,
) -> None:
    community = f"network-cut-{how}"
    broker = _broker(mosquitto_factory)
    tsdb = victoria_metrics_factory()
    proxy = TcpProxy(int(broker.url.rsplit(":", 1)[1]))
    sent = _burst(community, stamped=False)  # Zigbee2MQTT: no device time, the hard case
    data = tmp_path / "agent"
    try:
        with _receiver() as receiver, publisher(broker.url) as pub:
            env = _env(
                receiver,
                COMMUNITY_EDGE_MQTT__KEEPALIVE_S="2",
                COMMUNITY_EDGE_LIVENESS__BROKER_LOST_AFTER_S="3",
                COMMUNITY_EDGE_LIVENESS__CHECK_S="1",
                # acks held 0.3 s after each commit (the test hook), so that the cut lands,
                # almost surely, between a commit and its ack: the case that doubles
                COMMUNITY_EDGE_TESTING__HOLD_ACKS_S="0.3",
            )
            agent = AgentProcess(
                data, f"mqtt://127.0.0.1:{proxy.port}", ["--tsdb-url", tsdb.url], env=env
            )
            with agent:
                pub.send((s.topic, s.body) for s in sent)
                wait_for(
                    lambda: _sum(agent.metrics(), ACKED) >= 3_000,
                    within_s=60,
                    what="3,000 messages acknowledged",
                )
                with _disconnected_sessions(broker.url) as dropped:
                    before = wait_for(lambda: dropped(), what="$SYS clients/disconnected") - 1
                    cut_at = time.monotonic()
                    proxy.cut() if how == "reset" else proxy.silence()
                    try:
                        # the broker dropped both sessions (at once, or after 1.5 keep-alives)
                        # and the agent raised its broker alert
                        wait_for(
                            lambda: dropped() - 1 >= before + 2,
                            within_s=30,
                            what="the broker dropping the agent's two sessions",
                        )
                        raised = wait_for(
                            lambda: _broker_lost(agent),
                            within_s=30,
                            what="the gateway-broker-lost alert",
                        )
                    finally:
                        proxy.restore()
                cut_s = time.monotonic() - cut_at
                published = pub.wait()
                _wait_drained(agent, broker.url)
                alerts, metrics = _settle(agent, community)
                wait_for(
                    lambda: len({e["id"] for r in receiver.received for e in r.events}) >= PRESSES,
                    what="every press notified",
                )
                cleared: dict[str, Any] = wait_for(
                    lambda: _resolved_broker_lost(agent, raised[0]["id"]),
                    within_s=30,
                    what="the broker alert resolved by the reconnection",
                )
            outcome = _outcome(data, tsdb, receiver, community, alerts)
    finally:
        proxy.close()
    extra = outcome.committed["readings"] - len(sent)
    print(
        f"\nnetwork cut ({how}) {cut_s:.1f} s mid-burst, keep-alive 2 s: published "
        f"{published:,} ({PRESSES} SOS); acked {_sum(metrics, ACKED):,}, redeliveries "
        f"recognised {_sum(metrics, REDELIVERED)}, reconnects {_sum(metrics, RECONNECTS)}; "
        f"committed {outcome.committed['readings']:,} readings (extra {extra}), stored "
        f"{len(outcome.stored):,} samples, {len(outcome.alerts)} alerts, notifications "
        f"{outcome.notifications}; broker-lost alert {raised[0]['severity']} opened, then "
        f"{cleared['status']} by {cleared['resolved_by']}"
    )
    assert published == BURST
    # the outbox's events: the presses' and the broker alert's two (opened, resolved)
    assert outcome.committed["events"] == PRESSES + 2
    _check(replace(outcome, committed={**outcome.committed, "events": PRESSES}), sent)
    # what the operator sees: one critical broker alert for the cut, closed by the reconnection
    assert [(a["severity"], a["status"]) for a in raised] == [("critical", "active")]
    assert _per_lane_reconnects(metrics) == {"alarm": 1, "telemetry": 1}
    assert metrics["community_edge_agent_stalls_total"] == 0  # a cut is not a stall
    assert _sum(metrics, REDELIVERED) > 0  # the cut did lose acks: the resends were recognised


def _resolved_broker_lost(agent: AgentProcess, alert_id: str) -> dict[str, Any] | None:
    """The broker alert once resolved (the list of open alerts no longer holds it)."""
    alert: dict[str, Any] = agent.get(f"/v1/alerts/{alert_id}")["alert"]
    return alert if alert["status"] == "resolved" else None


def _per_lane_reconnects(metrics: dict[str, float]) -> dict[str, int]:
    return {lane: int(metrics[f'{RECONNECTS}{{lane="{lane}"}}']) for lane in ("alarm", "telemetry")}
