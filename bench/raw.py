"""The yardstick: raw paho-mqtt consumers at QoS 1 that do nothing but count, and the fastest of them.

Each is measured like the agent: its persistent session is created first, the broker queues N
messages while it is offline, then it connects and the drain is timed from CONNACK to the N-th
message. Three flavours, each in a process of its own (`bench.raw_consumer`): paho over MQTT 3.1.1,
stock paho over MQTT 5, and paho over MQTT 5 with the property parsing the agent installs. The
agent's ratio is taken against the fastest: the honest ceiling for a plain Python consumer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from bench.machine import CpuMeter, process
from bench.publish import PublisherPool, PublishResult
from bench.raw_consumer import FLAVOURS
from bench.rig import BenchError, Rig
from bench.traffic import Traffic

LABELS = {
    "mqtt311": "paho, MQTT 3.1.1",
    "mqtt5": "paho, MQTT 5 (stock)",
    "mqtt5-agent": "paho, MQTT 5, the agent's property parsing",
}


@dataclass(frozen=True)
class RawResult:
    """How fast one raw consumer drained `messages` queued messages."""

    flavour: str
    messages: int
    seconds: float
    preload: PublishResult
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def us_per_message(self) -> float:
        """The consumer's own CPU time per message (since its CONNACK), in microseconds."""
        return 1e6 * self.cpu.get("consumer", 0.0) / 100 * self.seconds / max(self.messages, 1)


@dataclass(frozen=True)
class Yardstick:
    """Every flavour's drain; `ceiling` is the fastest, `cheapest` the least CPU per message."""

    results: tuple[RawResult, ...]

    @property
    def ceiling(self) -> RawResult:
        return max(self.results, key=lambda r: r.rate)

    @property
    def cheapest(self) -> RawResult:
        return min(self.results, key=lambda r: r.us_per_message)


def measure_raw(rig: Rig, pool: PublisherPool, traffic: Traffic) -> Yardstick:
    """Queue `traffic` for each offline raw consumer in turn, and time each drain."""
    return Yardstick(tuple(_measure(rig, pool, traffic, flavour) for flavour in FLAVOURS))


def _measure(rig: Rig, pool: PublisherPool, traffic: Traffic, flavour: str) -> RawResult:
    client_id = f"bench-raw-{flavour}"
    topic = f"ce/{traffic.community}/#"
    setup = _consumer(rig, flavour, client_id, topic, "setup")
    out, _ = setup.communicate(timeout=30)
    if setup.returncode != 0:
        raise BenchError(f"raw consumer {flavour}: no session ({out.strip()})")
    preload = pool.publish(traffic)
    if preload.failed:
        raise BenchError(f"raw consumer preload: {preload.failed} messages refused by the broker")
    consumer = _consumer(rig, flavour, client_id, topic, "drain", preload.sent)
    # the consumer's own CPU comes in its answer (it has exited by the time the meter stops)
    meter = CpuMeter({"broker": [process(rig.broker.pid)]})
    meter.start()
    try:
        out, _ = consumer.communicate(timeout=max(120.0, preload.sent / 1000))
        cpu = meter.stop()
    finally:
        if consumer.poll() is None:
            consumer.kill()
        rig.forget_session(client_id)
    answer = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"error": "no output"}
    if consumer.returncode != 0 or "error" in answer:
        raise BenchError(f"raw consumer {flavour}: {answer.get('error', consumer.returncode)}")
    seconds = float(answer["seconds"])
    # CPU from its start (connecting, subscribing): a little more than the drain itself
    cpu = {"consumer": round(100 * float(answer["cpu_s"]) / seconds, 1), **cpu}
    return RawResult(flavour, int(answer["received"]), seconds, preload, cpu)


def _consumer(
    rig: Rig, flavour: str, client_id: str, topic: str, mode: str, expected: int = 0
) -> subprocess.Popen[str]:
    broker = rig.broker
    command = [
        sys.executable,
        *("-m", "bench.raw_consumer", "--flavour", flavour, "--host", broker.host),
        *("--port", str(broker.port), "--client-id", client_id, "--topic", topic),
        *("--expected", str(expected), mode),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
