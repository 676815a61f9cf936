"""Alert latency: an SOS press published -> its `opened` event on the API's live stream.

Presses come at a steady interval, each from a button of its own, while a paced background load
runs at a share of the measured maximum ingest rate. Both ends are timed in this process with
`time.perf_counter()`: right before `publish()`, and when the event's data line arrives. Beside
it, where the time went: publish -> the moment the agent's pipeline handled the press (the
alert's `opened_at`, the agent's wall clock on this machine), and the rest, handled -> stream
(commit, express delivery, the stream, this process reading it).
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.ingest import processes
from bench.machine import CpuMeter
from bench.progress import Probe
from bench.publish import PublisherPool, PublishResult
from bench.rig import BenchError, Rig
from bench.traffic import Member, Traffic, sos_press
from tests.agent_process import AgentProcess

ALERT_COMMUNITY = "bench-alerts"


@dataclass(frozen=True)
class LatencyResult:
    """Latencies in ms at one load level; `missing` presses never showed on the stream."""

    label: str
    target_rate: float  # background load asked for, msgs/s
    load: PublishResult | None
    presses: int
    latencies_ms: list[float] = field(repr=False)
    cpu: dict[str, float]
    # publish -> handled by the agent's pipeline (its `opened_at`), per press that arrived
    handled_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def missing(self) -> int:
        return self.presses - len(self.latencies_ms)

    def percentile(self, q: float) -> float | None:
        """Nearest rank over every press; None when the rank falls on a missing one."""
        return _rank(self.latencies_ms, q, self.presses)

    def handled_percentile(self, q: float) -> float | None:
        """The same over publish -> handled."""
        return _rank(self.handled_ms, q, self.presses)

    @property
    def max_ms(self) -> float | None:
        return None if self.missing or not self.latencies_ms else max(self.latencies_ms)


def _rank(values: list[float], q: float, presses: int) -> float | None:
    if not presses:
        return None
    rank = max(1, math.ceil(q / 100 * presses))
    ordered = sorted(values)
    return ordered[rank - 1] if rank <= len(ordered) else None


class AlertListener:
    """Reads the agent's SSE stream in a thread; notes when each device's `opened` event came
    (`time.perf_counter()`) and when the agent handled it (its `opened_at`, epoch seconds)."""

    def __init__(self, agent: AgentProcess, community: str) -> None:
        self.arrivals: dict[str, float] = {}
        self.handled: dict[str, float] = {}
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._stopping = False
        self._response: httpx.Response | None = None
        self._error: BaseException | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        self._thread = threading.Thread(
            target=self._listen, args=(agent, community), name="alert-stream", daemon=True
        )
        self._thread.start()
        if not self._listening.wait(10):
            raise BenchError(f"could not open the alert stream: {self._error}")

    def _listen(self, agent: AgentProcess, community: str) -> None:
        try:
            with self._client.stream(
                "GET",
                f"{agent.url}/v1/alerts/stream",
                params={"community": community},
                headers=agent.headers,
            ) as response:
                response.raise_for_status()
                self._response = response
                self._listening.set()
                kind = ""
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        kind = line.removeprefix("event: ")
                    elif line.startswith("data: ") and kind == "opened":
                        arrived = time.perf_counter()
                        alert = json.loads(line.removeprefix("data: "))["alert"]
                        device = alert["device_id"]
                        opened = datetime.fromisoformat(alert["opened_at"]).timestamp()
                        with self._lock:
                            self.arrivals.setdefault(device, arrived)
                            self.handled.setdefault(device, opened)
        except Exception as exc:  # closed by `close()`, or the agent went away
            if not self._stopping:
                self._error = exc

    def arrived(self, device_id: str) -> float | None:
        with self._lock:
            return self.arrivals.get(device_id)

    def handled_at(self, device_id: str) -> float | None:
        """When the agent's pipeline handled the device's press (epoch seconds)."""
        with self._lock:
            return self.handled.get(device_id)

    def close(self) -> None:
        self._stopping = True
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.close()
        self._client.close()
        self._thread.join(5)


class _Presser:
    """A QoS 1 publisher of SOS presses in this process."""

    def __init__(self, rig: Rig) -> None:
        self._connected = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id="bench-sos-presser",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.on_connect = lambda *args: self._connected.set()
        self.client.connect(rig.broker.host, rig.broker.port)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise BenchError("SOS presser: no CONNACK")

    def press(self, device_id: str) -> tuple[float, float]:
        """Publish one press; returns the perf_counter and wall times taken right before."""
        topic, payload = sos_press(ALERT_COMMUNITY, "b01", device_id, 1, time.time_ns() // 10**6)
        published, wall = time.perf_counter(), time.time()
        self.client.publish(topic, payload, qos=1)
        return published, wall

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass(frozen=True)
class LatencyPlan:
    presses: int
    interval_s: float
    warmup_s: float  # load runs this long before the first press
    settle_s: float  # after the last press, how long to wait for missing events


def measure_latency(
    rig: Rig,
    pool: PublisherPool,
    probe: Probe,
    listener: AlertListener,
    plan: LatencyPlan,
    label: str,
    rate: float,
    load: tuple[str, tuple[Member, ...]],
) -> LatencyResult:
    """Press `plan.presses` buttons under a background load of `rate` msgs/s (none at 0).

    Args:
        load: the community and devices of the background load.
    """
    agent = probe.agent
    base = probe.counts()
    presser = _Presser(rig)
    meter = CpuMeter(processes(rig, agent, pool))
    loaded: PublishResult | None = None
    loading = False
    published: dict[str, tuple[float, float]] = {}
    try:
        if rate > 0:
            # generated up front for the whole level, stamped with the times it will be sent
            duration = plan.warmup_s + plan.presses * plan.interval_s + plan.settle_s + 2.0
            community, members = load
            traffic = Traffic(
                community, members, int(rate * duration), duration, time.time() + duration
            )
            pool.prepare(traffic, rate)
            pool.go()
            loading = True
            time.sleep(plan.warmup_s)
        meter.start()
        due = time.perf_counter()
        for number in range(plan.presses):
            due += plan.interval_s
            device = f"sos-{_device_part(label)}-{number:04d}"
            published[device] = presser.press(device)
            time.sleep(max(0.0, due - time.perf_counter()))
        deadline = time.monotonic() + plan.settle_s
        while time.monotonic() < deadline and any(listener.arrived(d) is None for d in published):
            time.sleep(0.05)
        cpu = meter.stop()
    finally:
        if loading:
            loaded = pool.stop()
        presser.close()
    latencies, handled = [], []
    for device, (sent_at, sent_wall) in published.items():
        arrived, opened = listener.arrived(device), listener.handled_at(device)
        if arrived is not None and opened is not None:
            latencies.append((arrived - sent_at) * 1000)
            handled.append((opened - sent_wall) * 1000)
    # let the agent catch up with the load before the next level starts
    sent = (loaded.sent if loaded else 0) + plan.presses
    probe.follow("acked", base.acked + sent, within_s=max(60.0, sent / 500), poll_s=0.5)
    return LatencyResult(label, rate, loaded, plan.presses, latencies, cpu, handled)


def _device_part(label: str) -> str:
    """A level's label as part of a device id ("90% telemetry" -> "90pct-telemetry"): ids are
    letters, digits and `._:-` (edge/identifier.py), and a press from an invalid one is a dead
    letter, not an alert."""
    return label.replace("%", "pct").replace(" ", "-")
