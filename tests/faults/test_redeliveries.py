"""Redeliveries with exact counts: the agent SIGKILLed again and again in the middle of a burst
(devices with and without their own timestamps), and SIGSTOPped for longer than its keep-alive.

What the broker sends again (committed, PUBACK lost) must yield nothing new: every message is one
row of the outbox (its AUTOINCREMENT counts every reading ever committed, across the restarts),
one sample in VictoriaMetrics, every SOS press one alert, one `opened` event and one notification
(one event id at the webhook receiver, which may see it more than once: delivery is at least
once). Messages without a device time are the hard case: each copy would get a new receive time.
Figures are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.agent_process import AgentProcess, wait_for
from tests.faults.test_crashes import (
    ACKED,
    REDELIVERED,
    _broker,
    _outbox_empty,
    _sum,
    broker_watch,
    publisher,
)
from tests.mqtt_recorder import sys_value
from tests.servers import MosquittoFactory, VictoriaMetricsFactory, VictoriaMetricsServer
from tests.test_webhook import Receiver

SECRET = "redelivery-webhook-SECRET-0a1b2c"
PRESSES = 20
BURST = 10_000  # messages, presses included


@dataclass(frozen=True)
class Sent:
    """One message as a device sent it; `key` is what the store holds for it, but its time."""

    topic: str
    body: dict[str, Any]
    metric: str
    device_id: str

    @property
    def key(self) -> tuple[str, str, float]:
        return (self.metric, self.device_id, float(self.body["battery"]))


def _burst(community: str, stamped: bool) -> list[Sent]:
    """Door contacts in the Zigbee2MQTT shape (no time, no sequence unless `stamped`) and 20 SOS
    presses spread through them; with `stamped` each message has its own ms time and sequence."""
    start_ms = time.time_ns() // 1_000_000 - 600_000
    sent: list[Sent] = []
    seqs: Counter[str] = Counter()

    def add(model: str, device: str, metric: str, fields: dict[str, Any]) -> None:
        if stamped:
            seqs[device] += 1
            fields = {**fields, "ts": start_ms + len(sent), "seq": seqs[device]}
        topic = f"ce/{community}/b01/{model}/{device}"
        sent.append(Sent(topic, fields, metric, device))

    presses = {250 + n * 495 for n in range(PRESSES)}
    number = 0
    for index in range(BURST):
        if index in presses:
            add(
                "tuya-sos-button",
                f"sos-{len(presses & set(range(index)))}",
                "sos_battery",
                {"action": "emergency", "battery": 80},
            )
            continue
        device = number % 250
        add(
            "zigbee-door-contact",
            f"dor-{device:03d}",
            "door_battery",
            {"contact": True, "battery": 60 + (number // 250) % 40},
        )
        number += 1
    return sent


def _stored(tsdb: VictoriaMetricsServer, community: str) -> list[tuple[str, str, float]]:
    return [
        (series.name, series.labels["device_id"], value)
        for series in tsdb.export(
            f'{{__name__=~"door_battery|sos_battery",community="{community}"}}'
        )
        for _, value in series.samples()
    ]


def _committed(data: Path) -> dict[str, int]:
    """Rows ever committed to the outbox's readings and events tables (across restarts)."""
    with sqlite3.connect(data / "outbox.db") as conn:
        rows = conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
    return {str(name): int(seq) for name, seq in rows}


def _acked(agent: AgentProcess, target: int) -> int:
    """Wait until `agent` has acknowledged `target` messages; how many it had then."""
    acked: int = wait_for(
        lambda: (n := _sum(agent.metrics(), ACKED)) >= target and n,
        within_s=60,
        what=f"{target:,} messages acknowledged",
    )
    return acked


def _wait_drained(agent: AgentProcess, url: str) -> None:
    """Wait until the broker holds nothing for the agent and the agent has nothing unacked."""
    with broker_watch(url) as watch:
        wait_for(
            lambda: (
                watch.counts().held == 0
                and _sum(agent.metrics(), "community_edge_mqtt_unacked") == 0
            ),
            within_s=120,
            what="the broker's queue for the agent drained",
        )


def _disconnected_sessions(url: str) -> AbstractContextManager[Callable[[], int]]:
    """The broker's count of persistent sessions whose client is gone (`$SYS`, every ~2 s), plus
    one, so that a first value of 0 is truthy; 0 until the first update arrives."""
    return sys_value(url, "$SYS/broker/clients/disconnected", lambda p: int(p) + 1, 0)


@contextmanager
def _receiver() -> Iterator[Receiver]:
    with Receiver(SECRET, 200) as receiver:
        yield receiver


def _env(receiver: Receiver, **extra: str) -> dict[str, str]:
    hooks = [{"url": receiver.url, "secret": SECRET}]
    return {"COMMUNITY_EDGE_WEBHOOKS": json.dumps(hooks), **extra}


@dataclass(frozen=True)
class Outcome:
    """What the store, the outbox, the alert API and the receiver hold in the end."""

    stored: list[tuple[str, str, float]]
    committed: dict[str, int]
    alerts: list[dict[str, Any]]
    opened_ids: dict[str, set[str]]  # device -> ids of `opened` events the receiver got
    notifications: int  # `opened` events received, repeats included


def _settle(agent: AgentProcess, community: str) -> tuple[list[dict[str, Any]], dict[str, float]]:
    wait_for(lambda: _outbox_empty(agent), within_s=120, what="the outbox drained")
    metrics = agent.metrics()
    alerts: list[dict[str, Any]] = agent.get("/v1/alerts", community=community, limit=100)["items"]
    return alerts, metrics


def _outcome(
    data: Path,
    tsdb: VictoriaMetricsServer,
    receiver: Receiver,
    community: str,
    alerts: list[dict[str, Any]],
) -> Outcome:
    opened: dict[str, set[str]] = {}
    notifications = 0
    for got in receiver.received:
        for event in got.events:
            if event["kind"] == "opened" and event["alert"]["community"] == community:
                opened.setdefault(event["alert"]["device_id"], set()).add(event["id"])
                notifications += 1
    return Outcome(_stored(tsdb, community), _committed(data), alerts, opened, notifications)


def _check(outcome: Outcome, sent: list[Sent]) -> None:
    presses = sorted(s.device_id for s in sent if s.metric == "sos_battery")
    assert len(presses) == PRESSES
    # every message once: one reading committed, one sample stored
    assert outcome.committed["readings"] == len(sent)
    assert len(outcome.stored) == len(sent)
    assert Counter(outcome.stored) == Counter(s.key for s in sent)
    # every press once: one alert, one `opened` event, one notification (by event id)
    assert outcome.committed["events"] == PRESSES
    assert sorted(a["device_id"] for a in outcome.alerts) == presses
    assert {(a["rule"], a["count"]) for a in outcome.alerts} == {("sos", 1)}
    assert sorted(outcome.opened_ids) == presses
    assert all(len(ids) == 1 for ids in outcome.opened_ids.values())


@pytest.mark.parametrize("stamped", [False, True], ids=["receive-time", "device-time"])
def test_agent_killed_three_times_mid_burst_yields_each_message_once(
    stamped: bool,
    tmp_path: Path,
    mosquitto_factory: MosquittoFactory,
    victoria_metrics_factory: VictoriaMetricsFactory,
) -> None:
    community = f"redeliver-kill-{'stamped' if stamped else 'plain'}"
    broker = _broker(mosquitto_factory)
    tsdb = victoria_metrics_factory()
    sent = _burst(community, stamped)
    data = tmp_path / "agent"
    args = ["--tsdb-url", tsdb.url]
    # Four agents, each sent a quarter of the burst while it runs; the first three are killed at
    # different points of theirs (the rest of a quarter waits in the broker for the next). The
    # first and third hold their acks 0.5 s after each commit (the test hook), so their kill
    # lands, almost surely, after a commit and before its ack: the window the broker resends.
    kill_at = (600, 1_200, 1_900)
    hold_acks_s = ("0.5", "0", "0.5")
    quarter = len(sent) // 4
    acked_at_kill: list[int] = []
    redelivered: list[int] = []
    published = 0
    with _receiver() as receiver, publisher(broker.url) as pub:
        env = _env(receiver)
        for n, target in enumerate(kill_at):
            hold = {"COMMUNITY_EDGE_TESTING__HOLD_ACKS_S": hold_acks_s[n]}
            agent = AgentProcess(data, broker.url, args, env=env | hold)
            agent.start()
            pub.send((s.topic, s.body) for s in sent[n * quarter : (n + 1) * quarter])
            try:
                acked_at_kill.append(_acked(agent, target))
                redelivered.append(_sum(agent.metrics(), REDELIVERED))
                agent.kill()
            finally:
                agent.__exit__(None, None, None)
            published += pub.wait()
        with AgentProcess(data, broker.url, args, env=env) as last:
            published += pub.publish_many((s.topic, s.body) for s in sent[3 * quarter :])
            _wait_drained(last, broker.url)
            alerts, metrics = _settle(last, community)
            wait_for(
                lambda: len({e["id"] for r in receiver.received for e in r.events}) >= PRESSES,
                what="every press notified",
            )
        redelivered.append(_sum(metrics, REDELIVERED))
        outcome = _outcome(data, tsdb, receiver, community, alerts)
    extra = outcome.committed["readings"] - len(sent)
    print(
        f"\nagent SIGKILLed {len(kill_at)} times mid-burst ({'device' if stamped else 'receive'}"
        f" time): published {published:,} ({PRESSES} SOS); killed after {acked_at_kill} acks; "
        f"redeliveries recognised per agent {redelivered}; committed "
        f"{outcome.committed['readings']:,} readings (extra {extra}), stored "
        f"{len(outcome.stored):,} samples, {len(outcome.alerts)} alerts, "
        f"{outcome.committed['events']} events, notifications {outcome.notifications} "
        f"({sum(len(i) for i in outcome.opened_ids.values())} distinct)"
    )
    assert published == BURST
    _check(outcome, sent)
    # the operator-visible signal: resends counted (community_edge_redeliveries_total)
    assert sum(redelivered) > 0


def test_agent_stopped_past_its_keepalive_yields_each_message_once(
    tmp_path: Path,
    mosquitto_factory: MosquittoFactory,
    victoria_metrics_factory: VictoriaMetricsFactory,
) -> None:
    """SIGSTOP mid-burst until the broker has dropped the agent (keep-alive 2 s), then SIGCONT:
    the agent commits what it had read, its acks go nowhere, and the broker resends them."""
    community = "redeliver-stop"
    broker = _broker(mosquitto_factory)
    tsdb = victoria_metrics_factory()
    sent = _burst(community, stamped=False)
    data = tmp_path / "agent"
    with _receiver() as receiver, publisher(broker.url) as pub:
        # a stall longer than broker_lost_after_s, seen by a monitor that checks every second
        env = _env(
            receiver,
            COMMUNITY_EDGE_MQTT__KEEPALIVE_S="2",
            COMMUNITY_EDGE_LIVENESS__BROKER_LOST_AFTER_S="3",
            COMMUNITY_EDGE_LIVENESS__CHECK_S="1",
        )
        agent = AgentProcess(data, broker.url, ["--tsdb-url", tsdb.url], env=env)
        with agent:
            pub.send((s.topic, s.body) for s in sent)
            wait_for(
                lambda: _sum(agent.metrics(), ACKED) >= 3_000,
                within_s=60,
                what="3,000 messages acknowledged",
            )
            with _disconnected_sessions(broker.url) as dropped:
                before = wait_for(lambda: dropped(), what="$SYS clients/disconnected") - 1
                stopped = time.monotonic()
                os.kill(agent.pid, signal.SIGSTOP)
                try:
                    # both sessions dropped by the broker (1.5 keep-alives without a packet)
                    wait_for(
                        lambda: dropped() - 1 >= before + 2,
                        within_s=30,
                        what="the broker dropping the stopped agent's two sessions",
                    )
                finally:
                    os.kill(agent.pid, signal.SIGCONT)
            stopped_s = time.monotonic() - stopped
            published = pub.wait()
            wait_for(
                lambda: (
                    agent.metrics()[f'{REDELIVERED}{{lane="telemetry"}}'] > 0
                    or _sum(agent.metrics(), ACKED) >= published
                ),
                within_s=60,
                what="the broker's resends",
            )
            # the broker holds nothing more for the agent (a moment with nothing unacked can
            # come between two deliveries after the reconnection: not the end)
            _wait_drained(agent, broker.url)
            alerts, metrics = _settle(agent, community)
            wait_for(
                lambda: len({e["id"] for r in receiver.received for e in r.events}) >= PRESSES,
                what="every press notified",
            )
            broker_lost = [
                a
                for a in agent.get("/v1/alerts", limit=100)["items"]
                if a["rule"] == "gateway-broker-lost"
            ]
        outcome = _outcome(data, tsdb, receiver, community, alerts)
    print(
        f"\nagent SIGSTOPped {stopped_s:.1f} s (keep-alive 2 s) mid-burst: published "
        f"{published:,}; acked {_sum(metrics, ACKED):,}, redeliveries recognised "
        f"{_sum(metrics, REDELIVERED)}; committed {outcome.committed['readings']:,} readings "
        f"(extra {outcome.committed['readings'] - len(sent)}), stored {len(outcome.stored):,} "
        f"samples, {len(outcome.alerts)} alerts, notifications {outcome.notifications}; "
        f"broker-lost alerts {len(broker_lost)}; stall reported "
        f"{metrics['community_edge_agent_stalled_seconds_total']:.1f} s"
    )
    assert published == BURST
    _check(outcome, sent)
    # the operator is told: the agent's own stall, with its length, and no broker alert
    assert broker_lost == []
    assert metrics["community_edge_agent_stalls_total"] >= 1
    assert metrics["community_edge_agent_stalled_seconds_total"] >= stopped_s - 2
    assert "the agent stalled for" in agent.log_path.read_text()
