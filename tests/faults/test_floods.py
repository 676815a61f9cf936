"""Fault tests under load, with exact counts: a telemetry flood while SOS buttons are pressed, the
outbox at its size cap, a corrupted outbox on start, and thousands of malformed payloads.

Each test has its own persistent mosquitto (queues sized for a flood) and its own community; the
agent runs as `community-edge run` in its own process. Figures are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.agent_process import AgentProcess, wait_for
from tests.mqtt_publisher import Publisher
from tests.servers import (
    MosquittoFactory,
    MosquittoServer,
    VictoriaMetricsFactory,
)

DOOR = "zigbee-door-contact"
SOS = "tuya-sos-button"
# The gateway broker: a window of 1000 unacknowledged messages per session, room for a long
# flood in the queue, QoS 0 never queued beside QoS 1; `$SYS` every second to watch the queue.
BROKER_CONFIG = (
    "max_inflight_messages 1000",
    "max_queued_messages 2000000",
    "queue_qos0_messages false",
    "sys_interval 1",
)
TELEMETRY_ACKED = 'community_edge_messages_acked_total{lane="telemetry"}'
ALARM_ACKED = 'community_edge_messages_acked_total{lane="alarm"}'
TELEMETRY_UNACKED = 'community_edge_mqtt_unacked{lane="telemetry"}'
READINGS = "community_edge_readings_total"
SHED = "community_edge_outbox_shed_readings_total"
LOCAL_BACKLOG = 'community_edge_outbox_depth{lane="readings",sink="local-readings"}'


def _broker(factory: MosquittoFactory) -> MosquittoServer:
    return factory(persistence=True, extra_config=BROKER_CONFIG)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _dead_letters(metrics: dict[str, float]) -> dict[str, int]:
    prefix = 'community_edge_dead_letters_total{cause="'
    return {k[len(prefix) : -2]: int(v) for k, v in metrics.items() if k.startswith(prefix)}


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@contextmanager
def _publisher(url: str) -> Iterator[Publisher]:
    """The shared publisher with a wide in-flight window: a flood is sent pipelined."""
    with Publisher(url, timeout=60.0, max_inflight=1000) as publisher:
        yield publisher


class _BrokerQueue:
    """Samples `$SYS/broker/store/messages/count`: messages the broker holds (queued, in flight)."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("mqtt://").partition(":")
        self.samples: list[tuple[float, int]] = []  # (monotonic time, messages held)
        self._lock = threading.Lock()
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"fault-sys-{time.monotonic_ns()}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.on_message = self._on_message
        self._client.connect(host, int(port))
        self._client.subscribe("$SYS/broker/store/messages/count", qos=0)
        self._client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.samples.append((time.monotonic(), int(message.payload)))

    def latest(self) -> int:
        with self._lock:
            return self.samples[-1][1] if self.samples else 0

    def between(self, start: float, end: float) -> list[int]:
        with self._lock:
            return [n for at, n in self.samples if start <= at <= end]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _simulate(url: str, *args: str) -> subprocess.Popen[str]:
    """`community-edge simulate ... --json` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "simulate", "--mqtt-url", url, "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _summary(process: subprocess.Popen[str], within_s: float = 90.0) -> dict[str, Any]:
    out, err = process.communicate(timeout=within_s)
    assert process.returncode == 0, err
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert summary["failed"] == 0, summary
    return summary


def _sos(community: str, number: int, ts: int, building: str = "b01") -> tuple[str, bytes]:
    topic = f"ce/{community}/{building}/{SOS}/sos-{number:02d}"
    body = {"action": "emergency", "battery": 80, "linkquality": 120, "ts": ts, "seq": 1}
    return topic, orjson.dumps(body)


def _alerts(agent: AgentProcess, community: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = agent.get("/v1/alerts", community=community, limit=500)["items"]
    return items


def _stored_rows(data_dir: Path, community: str, model: str) -> int:
    """Rows of the embedded store for one community and model, read from its file."""
    with sqlite3.connect(f"file:{data_dir / 'readings.db'}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM readings WHERE community = ? AND model = ?", (community, model)
        ).fetchone()
    return int(row[0])


# --- 1. a telemetry flood while SOS buttons are pressed ------------------------------------------


def test_sos_is_not_delayed_behind_a_telemetry_flood(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    """20 SOS presses, 0.25 s apart, while the telemetry session has tens of thousands queued.

    The flood is a number of messages (120,000), not a duration: on a machine busy with other work
    (four test suites sharing two cores, or a parallel run) its publisher slows down, and a flood of
    15 s then had not queued the 15,000 the presses wait for within 10 s, or let the agent drain the
    backlog before the last press. The presses span 5 s; the backlog is asserted below."""
    community = "flood-sos"
    doors = f"{community}-doors"
    broker = _broker(mosquitto_factory)
    queue = _BrokerQueue(broker.url)
    agent = AgentProcess(tmp_path / "agent", broker.url)
    flood: subprocess.Popen[str] | None = None
    try:
        # a first start creates both persistent sessions: the broker queues for them from now on
        agent.start()
        assert agent.stop() == 0
        flood = _simulate(
            broker.url,
            *("--profile", DOOR, "--devices", "5000", "--rate", "20000", "--messages", "120000"),
            *("--community", doors),
        )
        # One publisher barely outpaces a running agent, so the flood gets a head start: the
        # telemetry session has a queue of its own before the agent is back and the presses begin.
        wait_for(lambda: queue.latest() >= 15_000, within_s=60, what="a queued telemetry backlog")
        agent.start()
        started = time.monotonic()
        acked_at_start = agent.metrics()[TELEMETRY_ACKED]
        pressed: dict[str, int] = {}  # device id -> ts (publish time, ms)
        unacked: list[float] = []
        with _publisher(broker.url) as sos:
            for number in range(20):
                due = started + 0.25 * number
                time.sleep(max(0.0, due - time.monotonic()))  # the point: presses 0.25 s apart
                ts = _now_ms()
                topic, payload = _sos(community, number, ts)
                sos.publish(topic, payload)
                pressed[topic.rsplit("/", 1)[1]] = ts
                unacked.append(agent.metrics()[TELEMETRY_UNACKED])
        window_end = time.monotonic()
        acked_in_window = agent.metrics()[TELEMETRY_ACKED] - acked_at_start
        summary = _summary(flood, within_s=300)
        flood_end = time.monotonic()
        published = summary["sent"]
        held_at_flood_end = published - agent.metrics()[TELEMETRY_ACKED]
        wait_for(
            lambda: agent.metrics()[TELEMETRY_ACKED] == published,
            within_s=90,
            what="every flood message acknowledged",
        )
        drained = time.monotonic()
        wait_for(lambda: agent.metrics()[LOCAL_BACKLOG] == 0, what="the store caught up")
        metrics = agent.metrics()
        alerts = wait_for(lambda: len(a := _alerts(agent, community)) >= 20 and a, what="20 SOS")
    finally:
        if flood is not None and flood.poll() is None:  # a failed wait: the flood still runs
            flood.kill()
            flood.communicate()
        agent.__exit__(None, None, None)
        queue.close()
    held = queue.between(started, window_end)

    assert metrics[TELEMETRY_ACKED] == published
    assert metrics[ALARM_ACKED] == 20
    assert metrics[READINGS] == published + 20
    assert metrics['community_edge_sink_delivered_total{sink="local-readings"}'] == published + 20
    assert _dead_letters(metrics) == {}
    assert metrics[SHED] == 0
    assert _stored_rows(agent.data_dir, doors, DOOR) == published
    assert _stored_rows(agent.data_dir, community, SOS) == 20
    # every press raised its own alert, exactly once
    assert sorted(a["device_id"] for a in alerts) == sorted(pressed)
    assert {(a["rule"], a["count"], a["status"]) for a in alerts} == {("sos", 1, "active")}
    latency = [
        datetime.fromisoformat(a["opened_at"]).timestamp() - pressed[a["device_id"]] / 1000
        for a in alerts
    ]
    p50, p99 = statistics.median(latency), _percentile(latency, 99)
    print(
        f"\nflood: {published:,} door-contact messages published in {summary['seconds']:.1f} s "
        f"({summary['rate']:,.0f}/s); agent ingested {acked_in_window / (window_end - started):,.0f}"
        f"/s while the SOS buttons were pressed, {published / (drained - started):,.0f}/s from "
        f"its start to the last ack; broker held {min(held, default=-1):,}-"
        f"{max(held, default=-1):,} messages during the presses, {held_at_flood_end:,.0f} "
        f"unacknowledged when the flood ended ({drained - flood_end:.1f} s to drain); telemetry "
        f"in flight {min(unacked):.0f}-{max(unacked):.0f}\n"
        f"SOS latency (opened_at - ts) over 20 presses: p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {max(latency) * 1000:.0f} ms; "
        f"stored {published:,} + 20, shed 0, lost 0, duplicated 0"
    )
    # the flood really saturated the telemetry lane: a backlog throughout the presses
    assert held, "no $SYS samples of the broker's store"
    assert min(held) >= 1000, held
    assert all(value >= -0.05 for value in latency), latency  # the agent cannot open it early
    assert p99 < 1.0, sorted(latency)


# --- 2. the outbox at its size cap -----------------------------------------------------------


def test_outbox_at_its_cap_sheds_the_oldest_readings_and_never_an_alert(
    tmp_path: Path,
    mosquitto_factory: MosquittoFactory,
    victoria_metrics_factory: VictoriaMetricsFactory,
) -> None:
    community = "cap"
    broker = _broker(mosquitto_factory)
    tsdb = victoria_metrics_factory()
    backlog = 'community_edge_outbox_depth{lane="readings",sink="tsdb"}'
    events_backlog = 'community_edge_outbox_depth{lane="events",sink="tsdb"}'
    with AgentProcess(
        tmp_path / "agent",
        broker.url,
        ["--tsdb-url", tsdb.url],
        env={"COMMUNITY_EDGE_OUTBOX_MAX_MB": "1"},
    ) as agent:
        tsdb.kill()  # nothing drains: every reading stays in the outbox
        flood = _simulate(
            broker.url,
            *("--profile", DOOR, "--devices", "2000", "--rate", "6000", "--duration", "4"),
            *("--community", community),
        )
        with _publisher(broker.url) as sos:  # ten SOS presses while the outbox fills up
            for number in range(10):
                time.sleep(0.35)  # the point: presses spread over the flood
                sos.publish(*_sos(community, number, _now_ms()))
        published = _summary(flood)["sent"]
        readings = published + 10  # an SOS press is a reading too
        wait_for(
            lambda: (m := agent.metrics())[TELEMETRY_ACKED] == published and m[ALARM_ACKED] == 10,
            within_s=60,
            what="everything acknowledged",
        )
        wait_for(lambda: len(_alerts(agent, community)) == 10, what="ten alerts in the store")
        held = agent.metrics()
        shed = held[SHED]
        assert shed > 0
        assert held[backlog] == readings - shed  # exactly what was not shed waits for the tsdb
        assert held[events_backlog] == 10
        assert held[READINGS] == readings
        assert "reached its cap of 1048576 bytes: shed the" in agent.log_path.read_text()

        tsdb.start()
        wait_for(
            lambda: (m := agent.metrics())[backlog] == 0 and m[events_backlog] == 0,
            within_s=60,
            what="the outbox drained into the restarted tsdb",
        )
        drained = agent.metrics()
        alerts = _alerts(agent, community)
    assert drained[SHED] == shed  # nothing shed after the ingest ended
    assert _dead_letters(drained) == {}
    stored_doors = tsdb.count_samples(f'{{__name__="door_battery",community="{community}"}}')
    stored_sos = tsdb.count_samples(f'{{__name__="sos_battery",community="{community}"}}')
    events = tsdb.export(f'{{__name__="alert_event_count",community="{community}"}}')
    print(
        f"\noutbox cap 1 MiB: {readings:,} readings published ({published:,} door, 10 SOS), "
        f"shed {shed:,.0f}, stored {stored_doors + stored_sos:,} "
        f"({stored_doors:,} door, {stored_sos} SOS), lost "
        f"{readings - shed - stored_doors - stored_sos:,.0f}; alerts 10 in the store, "
        f"{sum(len(s.values) for s in events)} alert events in the tsdb"
    )
    assert stored_doors + stored_sos + shed == readings
    # alert events are never shed: each press is one alert, in the store and in the tsdb
    assert sorted(a["device_id"] for a in alerts) == [f"sos-{n:02d}" for n in range(10)]
    assert {(a["rule"], a["count"]) for a in alerts} == {("sos", 1)}
    assert sorted(s.labels["device_id"] for s in events) == [f"sos-{n:02d}" for n in range(10)]
    assert {(s.labels["kind"], len(s.values)) for s in events} == {("opened", 1)}


# --- 3. a corrupted outbox on start ----------------------------------------------------------


def test_a_corrupted_outbox_is_moved_aside_and_a_fresh_one_begins(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    community = "corrupt"
    broker = _broker(mosquitto_factory)
    data = tmp_path / "agent"
    with AgentProcess(data, broker.url) as agent:
        with _publisher(broker.url) as sos:
            sos.publish(*_sos(community, 0, _now_ms()))
        wait_for(lambda: _alerts(agent, community), what="the first SOS")
        assert agent.metrics()["community_edge_outbox_recovered"] == 0
    outbox = data / "outbox.db"
    garbage = b"this is not an SQLite database \x00\xff" * 2048
    outbox.write_bytes(garbage)
    for suffix in ("-wal", "-shm"):
        Path(f"{outbox}{suffix}").unlink(missing_ok=True)

    with AgentProcess(data, broker.url) as agent:
        assert agent.metrics()["community_edge_outbox_recovered"] == 1
        moved = sorted(data.glob("outbox.db.corrupt-*"))
        assert [p.name for p in moved] == [moved[0].name]  # the main file alone: no WAL was left
        assert moved[0].read_bytes() == garbage
        assert outbox.read_bytes() != garbage  # a fresh outbox in its place
        log = agent.log_path.read_text()
        assert f"outbox {outbox} is unreadable" in log
        assert f"moved aside to {moved[0]}" in log
        with _publisher(broker.url) as sos:
            sos.publish(*_sos(community, 1, _now_ms()))
        alerts = wait_for(
            lambda: len(a := _alerts(agent, community)) == 2 and a, what="an SOS after recovery"
        )
        assert sorted(a["device_id"] for a in alerts) == ["sos-00", "sos-01"]
        assert agent.metrics()[ALARM_ACKED] == 1
        # the readings store is a sink of the outbox, behind its linger: it may trail the alert
        readings = wait_for(
            lambda: len(r := agent.get("/v1/readings", community=community)["items"]) >= 2 and r,
            what="both readings stored",
        )
        assert sorted(r["device_id"] for r in readings) == ["sos-00", "sos-01"]
    print(f"\ncorrupt outbox: moved to {moved[0].name}; 1 SOS after recovery, 1 alert raised")


# --- 4. thousands of malformed payloads, then good ones --------------------------------------

_HUGE = orjson.dumps({"contact": True, "padding": "x" * (70 * 1024)})  # over the 64 KiB limit


def _malformed(community: str) -> tuple[list[tuple[str, bytes]], Counter[str]]:
    """10,000 bad messages on topics the agent subscribes to, and the cause each one must get."""
    door = f"ce/{community}/b01/{DOOR}"
    kinds: list[tuple[str, int, str, bytes]] = [
        ("not_json", 2000, f"{door}/dor-1", b'\xff{"contact": true'),
        ("wrong_type", 2000, f"{door}/dor-2", b'{"contact": "closed", "battery": 80}'),
        ("missing_field", 2000, f"{door}/dor-3", b'{"battery": 80, "linkquality": 90}'),
        ("not_object", 1000, f"{door}/dor-4", b"[true]"),
        ("out_of_range", 1000, f"{door}/dor-5", b'{"contact": true, "battery": 180}'),
        # the subscription's `+` matches an empty level, which no profile's topic allows
        ("unknown_topic", 1000, f"ce/{community}//{DOOR}/dor-6", b'{"contact": true}'),
        ("no_known_field", 500, f"ce/{community}/b01/{SOS}/sos-7", b'{"button": "pressed"}'),
        (
            "unmapped_value",
            400,
            f"ce/{community}/b01/tuya-fall-radar/rad-8",
            b'{"fall_down_status": "sideways"}',
        ),
        ("too_large", 100, f"{door}/dor-9", _HUGE),
    ]
    messages = [(topic, payload) for _, count, topic, payload in kinds for _ in range(count)]
    expected = Counter({cause: count for cause, count, _, _ in kinds})
    # interleaved, as a misbehaving fleet would send them
    return messages[0::2] + messages[1::2], expected


def test_malformed_payloads_become_dead_letters_and_good_ones_still_flow(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    community = "malformed"
    broker = _broker(mosquitto_factory)
    bad, expected = _malformed(community)
    assert len(bad) == sum(expected.values()) == 10_000
    base = _now_ms() - 60_000
    good = [
        (
            f"ce/{community}/b02/{DOOR}/dor-{n % 100:03d}",
            orjson.dumps(
                {"contact": n % 2 == 0, "battery": 90, "linkquality": 100, "ts": base + n}
                | {"seq": n // 100 + 1}
            ),
        )
        for n in range(1000)
    ]
    with AgentProcess(tmp_path / "agent", broker.url) as agent, _publisher(broker.url) as pub:
        started = time.monotonic()
        pub.publish_many(bad)
        pub.publish_many(good)
        wait_for(
            lambda: (m := agent.metrics())[TELEMETRY_ACKED] + m[ALARM_ACKED] == 11_000,
            within_s=60,
            what="all 11,000 messages acknowledged",
        )
        seconds = time.monotonic() - started
        wait_for(lambda: agent.metrics()[LOCAL_BACKLOG] == 0, what="the store caught up")
        metrics = agent.metrics()
        readings = agent.get("/v1/readings", community=community, limit=5000)["items"]
        letters: list[dict[str, Any]] = []
        before: int | None = None
        while page := agent.get(
            "/v1/dead-letters", limit=1000, **({} if before is None else {"before_id": before})
        ):
            letters += page
            before = page[-1]["id"]
        health = agent.get("/healthz")
        ready = agent.get("/readyz")
    print(
        f"\nmalformed: 10,000 bad + 1,000 good acknowledged in {seconds:.1f} s; stored "
        f"{len(readings):,}; dead letters {dict(sorted(_dead_letters(metrics).items()))}"
    )
    assert _dead_letters(metrics) == dict(expected)
    assert metrics[READINGS] == 1000
    assert len(readings) == 1000
    assert {
        (r["device_id"], round(datetime.fromisoformat(r["at"]).timestamp() * 1000))
        for r in readings
    } == {(f"dor-{n % 100:03d}", base + n) for n in range(1000)}
    assert len(letters) == 10_000
    assert Counter(d["cause"] for d in letters) == expected
    assert len({d["id"] for d in letters}) == 10_000
    assert health["status"] == "ok"
    assert ready == {"ready": True, "problems": []}
    assert metrics['community_edge_mqtt_connected{lane="telemetry"}'] == 1


def test_oversized_junk_does_not_evict_good_readings_at_the_cap(
    tmp_path: Path,
    mosquitto_factory: MosquittoFactory,
    victoria_metrics_factory: VictoriaMetricsFactory,
) -> None:
    community = "junk"
    broker = _broker(mosquitto_factory)
    tsdb = victoria_metrics_factory()
    base = _now_ms() - 60_000
    good = [
        (
            f"ce/{community}/b01/{DOOR}/dor-{n % 100:03d}",
            orjson.dumps({"contact": True, "battery": 90, "ts": base + n}),
        )
        for n in range(1000)
    ]  # about 200 KB in the outbox: far below its cap of 1 MiB
    junk = [(f"ce/{community}/b01/{DOOR}/dor-x", _HUGE)] * 100  # 7 MB of dead letters
    with AgentProcess(
        tmp_path / "agent",
        broker.url,
        ["--tsdb-url", tsdb.url],
        env={"COMMUNITY_EDGE_OUTBOX_MAX_MB": "1"},
    ) as agent:
        tsdb.kill()
        with _publisher(broker.url) as pub:
            pub.publish_many(good)
            pub.publish_many(junk)
        wait_for(lambda: agent.metrics()[TELEMETRY_ACKED] == 1100, what="everything acknowledged")
        metrics = agent.metrics()
    print(
        f"\njunk at the cap: 1,000 good readings, 100 oversized dead letters: shed {metrics[SHED]:,.0f}"
    )
    assert _dead_letters(metrics) == {"too_large": 100}
    assert metrics[SHED] == 0
    assert metrics['community_edge_outbox_depth{lane="readings",sink="tsdb"}'] == 1000
