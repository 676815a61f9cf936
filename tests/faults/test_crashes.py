"""Crash fault tests with exact counts: the agent SIGKILLed in the middle of a burst and between its
outbox commit and its ack; the broker SIGKILLed with messages queued for the agent's sessions, once
after an autosave and twice before one.

Each test has its own persistent mosquitto configured with the lines of deploy/mosquitto-gateway.conf
that matter here, its own community, and publishes with its own paho client (QoS 1, every PUBACK
awaited), so "published" is exact. The broker's `$SYS` tree is the broker-side evidence: messages it
received, dropped and still holds. Figures are printed (`pytest -s`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.agent_process import AgentProcess, wait_for
from tests.mosquitto_db import unreferenced_topics
from tests.mqtt_publisher import Publisher
from tests.servers import (
    MosquittoFactory,
    MosquittoServer,
    VictoriaMetricsFactory,
    VictoriaMetricsServer,
)

SMOKE = "zigbee-ias-smoke"
DOOR = "zigbee-door-contact"
SOS = "tuya-sos-button"
# the one numeric field each model is counted by in the time-series server
CHECKED_FIELD = {SMOKE: "smoke_battery", DOOR: "door_battery", SOS: "sos_battery"}

GATEWAY_CONF = Path(__file__).parents[2] / "deploy" / "mosquitto-gateway.conf"
# the lines of the shipped gateway config that decide what a broker keeps for the agent
_GATEWAY_KEYS = (
    "persistent_client_expiration",
    "max_queued_messages",
    "max_queued_bytes",
    "max_inflight_messages",
    "queue_qos0_messages",
    "message_size_limit",
)

ACKED = "community_edge_messages_acked_total"
READINGS = "community_edge_readings_total"
REDELIVERED = "community_edge_redeliveries_total"
GAPS = "community_edge_sequence_gaps_total"
EMPTY_SESSIONS = "community_edge_mqtt_empty_sessions_total"
DEPTH = "community_edge_outbox_depth"
LANES = ("alarm", "telemetry")


def _gateway_broker_config(autosave_interval_s: int) -> list[str]:
    """The shipped gateway lines (listener and persistence location are the test server's own)."""
    lines: dict[str, str] = {}
    for raw in GATEWAY_CONF.read_text().splitlines():
        key, _, value = raw.partition("#")[0].strip().partition(" ")
        if key in _GATEWAY_KEYS:
            lines[key] = f"{key} {value.strip()}"
    assert sorted(lines) == sorted(_GATEWAY_KEYS), f"{GATEWAY_CONF} lacks some of {_GATEWAY_KEYS}"
    assert lines["max_queued_messages"] == "max_queued_messages 2000000"
    assert lines["queue_qos0_messages"] == "queue_qos0_messages false"
    return [
        *lines.values(),
        f"autosave_interval {autosave_interval_s}",
        "sys_interval 1",  # $SYS (the broker-side evidence) about every 2 s
    ]


def _broker(factory: MosquittoFactory, autosave_interval_s: int = 1) -> MosquittoServer:
    return factory(persistence=True, extra_config=_gateway_broker_config(autosave_interval_s))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _sum(metrics: dict[str, float], name: str) -> int:
    return int(sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{")))


def _per_lane(metrics: dict[str, float], name: str) -> dict[str, int]:
    return {lane: int(metrics[f'{name}{{lane="{lane}"}}']) for lane in LANES}


def _outbox_empty(agent: AgentProcess) -> bool:
    depths = [v for k, v in agent.metrics().items() if k.startswith(DEPTH + "{")]
    return bool(depths) and not any(depths)


# --- what the devices send -------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One device message as published; `point` is what the time-series server must hold."""

    community: str
    model: str
    device_id: str
    body: dict[str, Any]

    @property
    def topic(self) -> str:
        return f"ce/{self.community}/b01/{self.model}/{self.device_id}"

    @property
    def payload(self) -> bytes:
        return orjson.dumps(self.body)

    @property
    def point(self) -> tuple[str, str, int, float]:
        """(metric, device id, timestamp in ms, value)."""
        return (
            CHECKED_FIELD[self.model],
            self.device_id,
            int(self.body["ts"]),
            float(self.body["battery"]),
        )


class Fleet:
    """Devices of one community, each with its own sequence; every message has its own ms stamp."""

    def __init__(self, community: str) -> None:
        self.community = community
        self._seq: Counter[str] = Counter()
        self._ts = _now_ms() - 600_000  # ten minutes ago: a sane device time, unique per message

    def _message(self, model: str, device_id: str, fields: dict[str, Any]) -> Message:
        self._seq[device_id] += 1
        self._ts += 1
        body = {**fields, "ts": self._ts, "seq": self._seq[device_id]}
        return Message(self.community, model, device_id, body)

    def smoke(self, number: int, battery: int) -> Message:
        fields = {"smoke": False, "test": False, "tamper": False, "battery_low": False}
        return self._message(SMOKE, f"smk-{number:03d}", fields | {"battery": battery})

    def door(self, number: int, battery: int) -> Message:
        return self._message(DOOR, f"dor-{number:03d}", {"contact": True, "battery": battery})

    def sos_press(self, number: int) -> Message:
        return self._message(SOS, f"sos-{number:02d}", {"action": "emergency", "battery": 80})

    def sos_report(self, number: int) -> Message:
        """A battery report without a decoded action: a reading, never an alert."""
        return self._message(SOS, f"sos-{number:02d}", {"action": None, "battery": 81})

    def routine(self, devices: int, rounds: int) -> list[Message]:
        """`rounds` reports from each of `devices` smoke alarms and as many door contacts."""
        return [
            make(number, 60 + (number + r) % 40)
            for r in range(rounds)
            for number in range(devices)
            for make in (self.smoke, self.door)
        ]


# --- publishing and watching the broker ------------------------------------------------------


def _client(url: str, role: str) -> tuple[mqtt.Client, str, int]:
    host, _, port = url.removeprefix("mqtt://").partition(":")
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"crash-{role}-{os.getpid()}-{time.monotonic_ns()}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    return client, host, int(port)


@contextmanager
def publisher(url: str) -> Iterator[Publisher]:
    """The shared publisher with a wide in-flight window: a burst is sent pipelined."""
    with Publisher(url, timeout=60.0, max_inflight=1000) as pub:
        yield pub


def publish(url: str, messages: Sequence[Message]) -> int:
    """Publish and wait for every PUBACK; returns how many the broker acknowledged."""
    with publisher(url) as pub:
        return pub.publish_many((m.topic, m.payload) for m in messages)


@dataclass(frozen=True)
class BrokerCounts:
    """One consistent `$SYS` update of the broker."""

    # messages in the broker's store: retained, queued or in flight to a client, and after a
    # restart from a database the ones restored for nobody (`tests/mosquitto_db.py`)
    store: int
    retained: int
    received: int  # PUBLISH packets received since the broker started
    dropped: int  # PUBLISH messages dropped (queue limits) since the broker started

    @property
    def held(self) -> int:
        """Messages stored and not retained: queued or in flight to a client."""
        return self.store - self.retained


class BrokerWatch:
    """Reads the broker's `$SYS` tree.

    mosquitto 2.0 publishes `$SYS` every two seconds with `sys_interval 1` (it waits for
    `now - interval > last_update` in whole seconds), each value only when it changed, starting
    with `uptime` and ending with `publish/bytes/sent` (which changes every time, since this
    client is sent `$SYS` messages). Within one update the store count goes out before the
    retained count, so an update in which new retained `$SYS` topics appeared (the first ones
    after a start) does not add up; an update without a new retained count does.
    """

    _TOPICS: Final = {
        "$SYS/broker/store/messages/count": "store",
        "$SYS/broker/retained messages/count": "retained",
        "$SYS/broker/publish/messages/received": "received",
        "$SYS/broker/publish/messages/dropped": "dropped",
        "$SYS/broker/uptime": "uptime",
        "$SYS/broker/publish/bytes/sent": "end",
    }

    def __init__(self, url: str) -> None:
        self._lock = threading.Lock()
        # (monotonic time, key, value, live): `live` is False for a retained copy sent on subscribe
        self._log: list[tuple[float, str, int, bool]] = []
        self._client, host, port = _client(url, "sys")
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.subscribe([(topic, 0) for topic in self._TOPICS])
        self._client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        value = int(message.payload.decode().split()[0])  # "12 seconds" for the uptime
        with self._lock:
            self._log.append(
                (time.monotonic(), self._TOPICS[message.topic], value, not message.retain)
            )

    def _updates(self, since: float) -> list[BrokerCounts]:
        """The complete, consistent `$SYS` updates that started after `since`, in order."""
        with self._lock:
            log = list(self._log)
        starts = [
            i for i, (at, key, _, live) in enumerate(log) if key == "uptime" and live and at > since
        ]
        updates = []
        for start in starts:
            end = next((i for i in range(start, len(log)) if log[i][1] == "end"), None)
            if end is None:
                break
            if any(key == "retained" for _, key, _, _ in log[start:end]):
                continue
            latest = {key: value for _, key, value, _ in log[: end + 1]}
            updates.append(
                BrokerCounts(
                    store=latest["store"],
                    retained=latest["retained"],
                    received=latest.get("received", 0),
                    dropped=latest.get("dropped", 0),
                )
            )
        return updates

    def counts(self, after: float | None = None, within_s: float = 20.0) -> BrokerCounts:
        """The broker's counts once settled: the first two successive consistent `$SYS` updates
        after `after` (default: now) that agree.

        Two updates about 2 s apart that agree are the broker at rest (no publish, delivery or
        ack still moving the counts). The 406 read once for 405 queued was not a moving count
        but a message the broker holds for nobody, restored from its database: see
        `tests/mosquitto_db.py`; a test that restarts the broker from a database counts those.
        """
        since = time.monotonic() if after is None else after

        def settled() -> BrokerCounts | None:
            updates = self._updates(since)
            return next(
                (now for before, now in pairwise(updates) if now == before),
                None,
            )

        counts: BrokerCounts = wait_for(settled, within_s, what="two agreeing $SYS updates")
        return counts

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@contextmanager
def broker_watch(url: str) -> Iterator[BrokerWatch]:
    watch = BrokerWatch(url)
    try:
        yield watch
    finally:
        watch.close()


@contextmanager
def _uptime_listener(url: str) -> Iterator[None]:
    """A client subscribed to `$SYS/broker/uptime` that has been sent one live (not the retained
    copy), as the agent's sessions are while connected; it stays until the block ends.

    mosquitto saves the `$SYS` message a client was sent live (see `tests/mosquitto_db.py`): a
    save in this block holds the current uptime, always, where the agent alone leaves it to the
    timing of its disconnect against the broker's 2 s `$SYS` updates.
    """
    live = threading.Event()
    client, host, port = _client(url, "uptime")
    client.on_message = lambda _client, _userdata, message: None if message.retain else live.set()
    client.connect(host, port)
    client.subscribe("$SYS/broker/uptime", 0)
    client.loop_start()
    try:
        wait_for(live.is_set, what="a live $SYS/broker/uptime")
        yield
    finally:
        client.disconnect()
        client.loop_stop()


def _wait_for_two_autosaves(broker: MosquittoServer, within_s: float = 10.0) -> float:
    """Wait until mosquitto has written its database twice since now; returns the seconds waited.

    mosquitto writes `mosquitto.db.new` and renames it over `mosquitto.db`, so each save is a new
    inode. The first new inode seen may come from a save that began before now; the second one
    began after the first was renamed, so it holds everything the broker had by now.
    """
    path = broker.persistence_dir / "mosquitto.db"

    def inode() -> int | None:
        try:
            return path.stat().st_ino
        except FileNotFoundError:
            return None

    started = time.monotonic()
    seen = [inode()]

    def two_saves() -> bool:
        current = inode()
        if current is not None and current != seen[-1]:
            seen.append(current)
        return len(seen) >= 3

    wait_for(two_saves, within_s, what="two autosaves of the broker")
    return time.monotonic() - started


# --- what the agent kept ---------------------------------------------------------------------


def _all_alerts(agent: AgentProcess, community: str) -> list[dict[str, Any]]:
    """Every alert of the community, following `next_cursor` to the end."""
    alerts: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"community": community, "limit": 7}  # small: pagination is used
        if cursor is not None:
            params["cursor"] = cursor
        page = agent.get("/v1/alerts", **params)
        alerts += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return alerts


def _stored_points(
    tsdb: VictoriaMetricsServer, community: str
) -> list[tuple[str, str, int, float]]:
    """Every (metric, device id, ms, value) the time-series server holds for the checked fields."""
    names = "|".join(sorted(CHECKED_FIELD.values()))
    return [
        (series.name, series.labels["device_id"], ts, value)
        for series in tsdb.export(f'{{__name__=~"{names}",community="{community}"}}')
        for ts, value in series.samples()
    ]


def _stored_readings(agent: AgentProcess, community: str) -> list[tuple[str, str, int, float]]:
    """The embedded store's readings of the community, as the same points."""
    items: list[dict[str, Any]] = agent.get("/v1/readings", community=community, limit=5000)[
        "items"
    ]
    return [
        (
            CHECKED_FIELD[r["model"]],
            r["device_id"],
            round(datetime.fromisoformat(r["at"]).timestamp() * 1000),
            float(r["fields"]["battery"]),
        )
        for r in items
    ]


def _check_sos_alerts(
    agent: AgentProcess, community: str, pressed: Sequence[Message]
) -> list[dict[str, Any]]:
    """Exactly one alert per press, never repeated, each with one `opened` event; returns them."""
    alerts = _all_alerts(agent, community)
    assert len({a["id"] for a in alerts}) == len(alerts)  # no alert listed twice
    assert sorted(a["device_id"] for a in alerts) == sorted(m.device_id for m in pressed)
    assert {(a["rule"], a["count"], a["status"]) for a in alerts} == {("sos", 1, "active")}
    for alert in alerts:
        history = agent.get(f"/v1/alerts/{alert['id']}")["history"]
        assert [event["kind"] for event in history] == ["opened"], history
    return alerts


# --- 1. the agent killed in the middle of a burst --------------------------------------------


def test_agent_killed_mid_burst_loses_and_duplicates_nothing(
    tmp_path: Path,
    mosquitto_factory: MosquittoFactory,
    victoria_metrics_factory: VictoriaMetricsFactory,
) -> None:
    community = "crash-burst"
    broker = _broker(mosquitto_factory)
    tsdb = victoria_metrics_factory()
    fleet = Fleet(community)
    routine = fleet.routine(devices=250, rounds=20)[:9_980]  # smoke alarms and door contacts
    presses = [fleet.sos_press(number) for number in range(20)]
    burst = list(routine)
    for index, press in enumerate(presses):  # spread through the burst
        burst.insert(250 + index * 495, press)
    assert len(burst) == len({m.point for m in burst}) == 10_000
    data = tmp_path / "agent"
    args = ["--tsdb-url", tsdb.url]

    with broker_watch(broker.url) as watch, publisher(broker.url) as pub:
        first = AgentProcess(data, broker.url, args)
        first.start()
        try:
            pub.send((m.topic, m.payload) for m in burst)
            acked_at_kill = wait_for(
                lambda: (n := _sum(first.metrics(), ACKED)) >= 2_000 and n,
                within_s=30,
                what="2,000 messages acknowledged",
            )
            first.kill()
        finally:
            first.__exit__(None, None, None)
        published = pub.wait()
        at_kill = watch.counts()  # what the broker holds for the dead agent

        second = AgentProcess(data, broker.url, args)
        restarted = time.monotonic()
        with second:
            wait_for(
                lambda: _sum(second.metrics(), ACKED) >= at_kill.held,
                within_s=60,
                what="the queued messages acknowledged",
            )
            wait_for(lambda: _outbox_empty(second), within_s=60, what="the outbox drained")
            recovered_s = time.monotonic() - restarted
            metrics = second.metrics()
            alerts = _check_sos_alerts(second, community, presses)
        at_end = watch.counts()

    stored = _stored_points(tsdb, community)
    expected = {m.point for m in burst}
    lost = len(expected - set(stored))
    duplicated_points = len(stored) - len(set(stored))
    duplicated_alerts = len(alerts) - len({(a["rule"], a["device_id"]) for a in alerts})
    events = tsdb.export(f'{{__name__="alert_event_count",community="{community}"}}')
    print(
        f"\nagent killed mid-burst: published {published:,} ({len(presses)} SOS); killed after "
        f"{acked_at_kill:,} acks counted ({max(0, acked_at_kill - published + at_kill.held)} of them "
        f"never reached the broker); the broker held {at_kill.held:,} for the dead agent; the "
        f"restarted agent acked {_sum(metrics, ACKED):,} and drained in {recovered_s:.1f} s; "
        f"stored {len(stored):,} points (lost {lost}, duplicated {duplicated_points}), {len(alerts)} alerts "
        f"(duplicated {duplicated_alerts}); broker received {at_end.received:,}, "
        f"dropped {at_end.dropped}, still holds {at_end.held}"
    )
    assert published == 10_000
    assert 0 < acked_at_kill < published  # killed while the burst was being processed
    # broker side: it took every message, dropped none, and handed all of them out in the end
    assert at_end.received == published
    assert at_kill.dropped == at_end.dropped == 0
    assert at_end.held == 0
    # the restarted agent got exactly what the broker still held: every message it had not seen
    # acknowledged, whether the dead agent had committed it (a redelivery) or never received it.
    # (`held` can exceed `published - acked_at_kill`: the counter counts acks handed to paho, and
    # a batch of them can still be unsent, or be lost with the reset connection, when the kill
    # comes; the broker redelivers those messages and the outbox and the sinks absorb the repeat.)
    assert 0 < at_kill.held < published
    assert _sum(metrics, ACKED) == at_kill.held
    # what the dead agent had committed came back as resends: acknowledged, not handled again
    assert metrics[READINGS] + _sum(metrics, REDELIVERED) == at_kill.held
    assert _sum(metrics, "community_edge_dead_letters_total") == 0
    assert metrics["community_edge_outbox_shed_readings_total"] == 0
    assert metrics[GAPS] == 0
    # every reading once: (metric, device, ms) is the point's key, and each is there exactly once
    assert len(stored) == len(set(stored)) == 10_000
    assert set(stored) == expected
    assert lost == duplicated_points == 0
    assert duplicated_alerts == 0
    assert sorted(s.labels["device_id"] for s in events) == sorted(m.device_id for m in presses)
    assert {(s.labels["kind"], len(s.values)) for s in events} == {("opened", 1)}


# --- 2. the agent killed between its outbox commit and its ack ------------------------------


def test_agent_killed_between_commit_and_ack_stores_each_message_once(
    tmp_path: Path,
    mosquitto_factory: MosquittoFactory,
    victoria_metrics_factory: VictoriaMetricsFactory,
) -> None:
    community = "crash-commit-ack"
    broker = _broker(mosquitto_factory)
    tsdb = victoria_metrics_factory()
    fleet = Fleet(community)
    readings = [fleet.door(number % 10, 70 + number % 20) for number in range(50)]
    presses = [fleet.sos_press(number) for number in range(5)]
    messages = readings + presses
    data = tmp_path / "agent"
    args = ["--tsdb-url", tsdb.url]
    delivered = 'community_edge_sink_delivered_total{sink="tsdb"}'

    with broker_watch(broker.url) as watch:
        # the ingest lanes sleep 5 s between each commit and its acks: the window to kill in
        held = AgentProcess(
            data, broker.url, args, env={"COMMUNITY_EDGE_TESTING__HOLD_ACKS_S": "5"}
        )
        held.start()
        try:
            published = publish(broker.url, messages)
            # committed: the forwarders only ever read the outbox, and they delivered everything
            # (55 readings, 5 alert events) to the time-series server and the 5 alerts to the store
            wait_for(
                lambda: held.metrics()[delivered] == 60 and len(_all_alerts(held, community)) == 5,
                within_s=20,
                what="all 55 messages committed",
            )
            acked_at_kill = _sum(held.metrics(), ACKED)
            held.kill()
            killed = time.monotonic()
        finally:
            held.__exit__(None, None, None)
        at_kill = watch.counts(after=killed)

        restarted = time.monotonic()
        with AgentProcess(data, broker.url, args) as agent:  # without the hook
            wait_for(
                lambda: _sum(agent.metrics(), ACKED) >= at_kill.held,
                what="the redeliveries acknowledged",
            )
            wait_for(lambda: _outbox_empty(agent), what="the outbox drained")
            recovered_s = time.monotonic() - restarted
            metrics = agent.metrics()
            alerts = _check_sos_alerts(agent, community, presses)
        at_end = watch.counts()

    stored = _stored_points(tsdb, community)
    events = tsdb.export(f'{{__name__="alert_event_count",community="{community}"}}')
    print(
        f"\nagent killed between commit and ack: published {published} (50 door, 5 SOS), all "
        f"committed, {acked_at_kill} acked before the kill; redelivered {at_kill.held} "
        f"(recognised as resends {_sum(metrics, REDELIVERED)}, readings_total after the restart "
        f"{metrics[READINGS]:.0f}), recovered in "
        f"{recovered_s:.1f} s; stored {len(stored)} points once each, {len(alerts)} alerts with "
        f"count 1, lost 0, duplicated 0"
    )
    assert published == 55
    assert acked_at_kill < published
    # the broker redelivered exactly what had been committed and not acknowledged
    assert at_kill.held == published - acked_at_kill
    # every one of them recognised as a resend: acknowledged, handled no second time
    assert _sum(metrics, REDELIVERED) == _sum(metrics, ACKED) == at_kill.held > 0
    assert metrics[READINGS] == 0
    assert at_end.held == at_end.dropped == 0
    assert at_end.received == published
    # each point once (same series, same ms: the redelivery overwrote it)
    assert sorted(stored) == sorted(m.point for m in messages)
    # a redelivered press is not a repeat press: no `repeated` event anywhere
    assert sorted(s.labels["device_id"] for s in events) == sorted(m.device_id for m in presses)
    assert {(s.labels["kind"], len(s.values)) for s in events} == {("opened", 1)}
    assert _sum(metrics, "community_edge_dead_letters_total") == 0


# --- 3. the broker killed with messages queued for the agent ---------------------------------


def _agent_session(agent: AgentProcess, url: str, round_one: Sequence[Message]) -> None:
    """Start the agent, let it create its sessions and take `round_one`, then stop it (SIGINT)."""
    try:
        agent.start()
        publish(url, round_one)
        wait_for(
            lambda: _sum(agent.metrics(), ACKED) == len(round_one),
            what="the first round acknowledged",
        )
    except BaseException:
        agent.__exit__(None, None, None)  # no agent left running after a failed start
        raise
    assert agent.stop() == 0  # the broker now queues for the agent's two sessions


def test_broker_killed_after_an_autosave_keeps_every_queued_message(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    """mosquitto 2.0.11, `autosave_interval 1`: every queued message is back after a SIGKILL.

    What was found: a save holds the agent's sessions (subscriptions, 7-day expiry) and every
    message queued for them, and a restart restores all of it; the agent reconnects to a present
    session (no empty session) and receives the whole queue, then devices go on without a gap.
    The saves come every 2 s, not every second (whole-second clock, strict comparison).
    """
    community = "crash-broker-saved"
    broker = _broker(mosquitto_factory, autosave_interval_s=1)
    fleet = Fleet(community)
    data = tmp_path / "agent"
    round_one = [*fleet.routine(devices=50, rounds=1), *(fleet.sos_report(n) for n in range(10))]
    queued = [*fleet.routine(devices=50, rounds=20), *(fleet.sos_press(n) for n in range(10))]
    after = fleet.routine(devices=50, rounds=1)
    _agent_session(AgentProcess(data, broker.url), broker.url, round_one)

    with broker_watch(broker.url) as watch:
        published = publish(broker.url, queued)
        before_kill = watch.counts()
    waited_s = _wait_for_two_autosaves(broker)
    broker.kill()
    # the database the restart reads: what it will hold for nobody (`tests/mosquitto_db.py`)
    orphans = unreferenced_topics(broker.persistence_dir / "mosquitto.db")
    broker.restart()  # same port, same persistence directory
    with broker_watch(broker.url) as watch:
        restored = watch.counts()
        restarted = time.monotonic()
        with AgentProcess(data, broker.url) as agent:
            wait_for(
                lambda: _sum(agent.metrics(), ACKED) == len(queued),
                what="the restored queue acknowledged",
            )
            recovered_s = time.monotonic() - restarted
            publish(broker.url, after)  # devices report again once the broker is back
            wait_for(
                lambda: _sum(agent.metrics(), ACKED) == len(queued) + len(after),
                what="the reports after the restart acknowledged",
            )
            wait_for(lambda: _outbox_empty(agent), what="the outbox drained")
            metrics = agent.metrics()
            stored = _stored_readings(agent, community)
            _check_sos_alerts(agent, community, [m for m in queued if m.model == SOS])
        at_end = watch.counts()

    sent = [*round_one, *queued, *after]
    lost = len({m.point for m in sent} - set(stored))
    print(
        f"\nbroker killed after an autosave: {published:,} queued for the stopped agent (broker "
        f"held {before_kill.held:,}); waited {waited_s:.1f} s for two saves; after the restart "
        f"the broker held {restored.held - at_end.held:,} (+{at_end.held} orphans: {orphans}); "
        f"the agent "
        f"received {_sum(metrics, ACKED) - len(after):,} in {recovered_s:.1f} s (empty sessions "
        f"{_sum(metrics, EMPTY_SESSIONS)}, sequence gaps {metrics[GAPS]:.0f}); stored "
        f"{len(stored):,} of {len(sent):,} readings, lost {lost}, duplicated 0"
    )
    assert published == len(queued) == 2_010
    assert before_kill.held == published
    assert before_kill.received == len(round_one) + published
    assert before_kill.dropped == at_end.dropped == 0
    # After a restart from its database the broker's store holds a few messages (3 or 4 here)
    # that are neither retained nor queued for anyone: the `$SYS` messages last sent live to the
    # watch, saved as plain messages and restored with nothing referring to them; they stay for
    # the broker's life. The restored queue is exactly what went away.
    assert all(topic.startswith("$SYS/") for topic in orphans)
    assert restored.held == published + len(orphans)
    assert at_end.held == len(orphans)
    assert _per_lane(metrics, EMPTY_SESSIONS) == {"alarm": 0, "telemetry": 0}
    assert metrics[GAPS] == 0
    assert sorted(stored) == sorted(m.point for m in sent)
    assert lost == 0


@dataclass(frozen=True)
class UnsavedCrash:
    """What a broker crash before a save did, and what the restarted agent reported."""

    published: int
    # what the database the broker restarted from held for nobody (`tests/mosquitto_db.py`)
    orphans: list[str]
    restarted: BrokerCounts  # before the queue was published
    broker: BrokerCounts  # just before the kill
    lost: list[Message]
    metrics: dict[str, float]
    alerts: list[dict[str, Any]]
    log: str


def _broker_killed_before_saving_its_queue(
    data: Path, factory: MosquittoFactory, community: str, *, session_saved: bool
) -> UnsavedCrash:
    """Devices report, the agent stops, 405 messages queue up, the broker is SIGKILLed at once,
    restarted, the agent started, and every device reports once more.

    Args:
        session_saved: the broker saved the agent's sessions (a clean restart) before the queue
            built up; otherwise it never saved anything.
    """
    broker = _broker(factory, autosave_interval_s=3600)  # no autosave within the test
    fleet = Fleet(community)
    round_one = [*fleet.routine(devices=20, rounds=1), *(fleet.sos_report(n) for n in range(5))]
    queued = [*fleet.routine(devices=20, rounds=10), *(fleet.sos_press(n) for n in range(5))]
    after = [*fleet.routine(devices=20, rounds=1), *(fleet.sos_report(n) for n in range(5))]
    _agent_session(AgentProcess(data, broker.url), broker.url, round_one)
    database = broker.persistence_dir / "mosquitto.db"
    orphans: list[str] = []
    if session_saved:
        # a clean stop saves the sessions, as an autosave would, and the uptime sent live
        with _uptime_listener(broker.url):
            broker.restart()
        orphans = unreferenced_topics(database)
    with broker_watch(broker.url) as watch:
        restarted = watch.counts()
        published = publish(broker.url, queued)
        before_kill = watch.counts()
    broker.kill()
    assert database.exists() == session_saved
    broker.restart()
    with AgentProcess(data, broker.url) as agent:
        publish(broker.url, after)
        wait_for(
            lambda: _sum(agent.metrics(), ACKED) == len(after),
            what="the reports after the restart acknowledged",
        )
        wait_for(lambda: _outbox_empty(agent), what="the outbox drained")
        metrics = agent.metrics()
        stored = set(_stored_readings(agent, community))
        alerts = _all_alerts(agent, community)
        log = agent.log_path.read_text()
    # the restarted agent got the new reports and nothing of the queue: it was lost in the broker
    assert _sum(metrics, ACKED) == len(after)
    assert stored == {m.point for m in [*round_one, *after]}
    assert before_kill.dropped == 0
    return UnsavedCrash(
        published=published,
        orphans=orphans,
        restarted=restarted,
        broker=before_kill,
        lost=[m for m in queued if m.point not in stored],
        metrics=metrics,
        alerts=alerts,
        log=log,
    )


def test_broker_killed_before_any_save_reports_an_empty_session(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    """A broker that never saved comes back without the agent's sessions: the loss is reported.

    mosquitto saves only on its timer and at a clean stop; killed before either, it restarts with
    no database at all: no sessions, no queue. The agent, which remembers having had a session
    (`mqtt-session` in its data dir), counts one empty session per lane and resubscribes.
    """
    crash = _broker_killed_before_saving_its_queue(
        tmp_path / "agent", mosquitto_factory, "crash-broker-unsaved", session_saved=False
    )
    empty = _per_lane(crash.metrics, EMPTY_SESSIONS)
    print(
        f"\nbroker killed before any save: {crash.published} queued (broker held "
        f"{crash.broker.held}), lost {len(crash.lost)} (5 SOS presses); reported: empty sessions "
        f"{empty}, sequence gaps {crash.metrics[GAPS]:.0f}"
    )
    assert crash.published == crash.broker.held == len(crash.lost) == 405
    assert crash.orphans == []  # a new broker: no database, nothing restored
    assert crash.restarted.held == 0
    assert crash.alerts == []  # the presses were lost in the broker, before the agent saw them
    # reported, not silent: each lane's session came back empty, once
    assert empty == {"alarm": 1, "telemetry": 1}
    assert crash.log.count("came back without our session") == 2


def test_broker_killed_after_saving_the_session_but_not_the_queue_reports_the_exact_loss(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    """The silent case: the broker saved the session earlier, then crashed with messages queued.

    mosquitto restores the session (so there is no empty session to report) without the messages
    queued since its last save. The only trace of the loss is in the devices' sequence numbers:
    each device that reports again must show a gap of exactly what it lost.

    What was found (it read 406 held for 405 queued, now and then, under load): the clean restart
    that saves the session also saves the `$SYS/broker/uptime` message the agent's sessions were
    last sent live, if no newer one replaced it between the agent's disconnect and the stop (an
    uptime goes out every 2 s). Restored, nothing refers to it and mosquitto 2.0.11 never frees
    it: one stored message, neither retained nor queued, for the broker's life (see
    `tests/mosquitto_db.py`). The restart now always has a client sent the uptime live, so the
    orphan is always there and always one; it is read from the saved database, and the
    restarted broker holds exactly it before the queue, and it plus the 405 at the kill.
    """
    crash = _broker_killed_before_saving_its_queue(
        tmp_path / "agent", mosquitto_factory, "crash-broker-queue-lost", session_saved=True
    )
    empty = _per_lane(crash.metrics, EMPTY_SESSIONS)
    print(
        f"\nbroker killed with its queue unsaved: {crash.published} queued (broker held "
        f"{crash.broker.held}, of them restored orphans {crash.orphans}), lost {len(crash.lost)} "
        f"(5 SOS presses); reported: empty sessions {empty}, sequence gaps "
        f"{crash.metrics[GAPS]:.0f}"
    )
    # the one orphan is all the restarted broker held, and it is held beside the queue
    assert crash.orphans == ["$SYS/broker/uptime"]
    assert crash.restarted.held == 1
    assert crash.broker.held == 406
    queued = crash.broker.held - len(crash.orphans)
    assert crash.published == queued == len(crash.lost) == 405
    assert crash.alerts == []
    assert empty == {"alarm": 0, "telemetry": 0}  # the session itself was restored
    # every lost message is a gap: 10 per smoke alarm and door contact, the press of each button
    assert crash.metrics[GAPS] == len(crash.lost)
