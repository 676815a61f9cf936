"""Ingest at full speed: a pre-loaded queue drained end to end, and a burst into a running agent.

Sustained rate: the agent's sessions are created, the agent is stopped, the broker queues N
messages, and the agent is started again; the clock runs from its CONNACK (as it logs it) until
its tsdb forwarder has delivered N points, and the points are counted back in VictoriaMetrics.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from bench.machine import CpuMeter, main_thread, process
from bench.progress import Probe, connected_at, first_reaching
from bench.publish import PublisherPool, PublishResult
from bench.rig import BenchError, Rig, client_ids
from bench.traffic import Traffic
from tests.agent_process import AgentProcess


@dataclass(frozen=True)
class IngestResult:
    """The agent draining `messages` queued messages: acknowledged, then delivered and stored."""

    messages: int
    stored: int
    seconds: float  # CONNACK -> every point delivered to the time-series server
    acked_seconds: float  # CONNACK -> every message acknowledged (committed to the outbox)
    cpu: dict[str, float]
    preload: PublishResult

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def acked_rate(self) -> float:
        return self.messages / self.acked_seconds


@dataclass(frozen=True)
class BurstResult:
    """`sent` messages published as fast as possible into a running agent."""

    sent: int
    stored: int
    publish: PublishResult
    stored_s: float  # first publish -> every point delivered
    cpu: dict[str, float]
    cpu_window_s: float  # what `cpu` is a share of

    @property
    def agent_us_per_message(self) -> float:
        """The agent's CPU time per message of the burst (every thread), in microseconds: on a
        shared machine a steadier figure than the rate."""
        return 1e6 * self.cpu.get("agent", 0.0) / 100 * self.cpu_window_s / max(self.sent, 1)

    @property
    def lost(self) -> int:
        return self.sent - self.stored


def processes(rig: Rig, agent: AgentProcess, pool: PublisherPool) -> dict[str, list[str]]:
    """What the CPU meters watch; `agent_loop` is the agent's event loop (its main thread),
    `bench` this process (the raw consumer, the SSE listener, the SOS presser)."""
    return {
        "agent": [process(agent.pid)],
        "agent_loop": [main_thread(agent.pid)],
        "broker": [process(rig.broker.pid)],
        "tsdb": [process(rig.tsdb.pid)],
        "publishers": [process(pid) for pid in pool.pids],
        "bench": [process(os.getpid())],
    }


def measure_ingest(
    rig: Rig, pool: PublisherPool, probe: Probe, traffic: Traffic, poll_s: float = 0.2
) -> IngestResult:
    """Leaves the agent running (connected, caught up) for the phases that follow."""
    agent = probe.agent
    agent.start()  # creates its persistent sessions
    rig.stop_agent(agent)
    preload = pool.publish(traffic)
    if preload.failed:
        raise BenchError(f"ingest preload: {preload.failed} messages refused by the broker")
    launched = time.time()
    agent.start(wait_ready=False)
    meter = CpuMeter(processes(rig, agent, pool))
    meter.start()
    samples = probe.follow(
        "delivered", preload.sent, within_s=max(120.0, preload.sent / 200), poll_s=poll_s
    )
    cpu = meter.stop()
    done_wall = time.time() - (time.monotonic() - samples[-1].at)
    acked_wall = time.time() - (
        time.monotonic() - first_reaching(samples, "acked", preload.sent).at
    )
    _, alarm = client_ids(agent)  # the mixed community is all on the alarm lane
    connack = connected_at(agent, alarm, after=launched)
    if connack is None:
        raise BenchError(f"no CONNACK for {alarm} in {agent.log_path}")
    stored = rig.wait_points(traffic.community, preload.sent)
    return IngestResult(
        messages=preload.sent,
        stored=stored,
        seconds=done_wall - connack,
        acked_seconds=acked_wall - connack,
        cpu=cpu,
        preload=preload,
    )


def measure_burst(
    rig: Rig, pool: PublisherPool, probe: Probe, traffic: Traffic, poll_s: float = 0.2
) -> BurstResult:
    """Publish `traffic` at once into the running agent; time until every point is stored."""
    agent = probe.agent
    base = probe.counts()
    pool.prepare(traffic)
    meter = CpuMeter(processes(rig, agent, pool))
    meter.start()
    started = pool.go()
    publish = pool.finish()
    samples = probe.follow(
        "delivered",
        base.delivered + publish.sent,
        within_s=max(120.0, publish.sent / 200),
        poll_s=poll_s,
    )
    cpu = meter.stop()
    stored = rig.wait_points(traffic.community, publish.sent)
    return BurstResult(
        sent=publish.sent,
        stored=stored,
        publish=publish,
        stored_s=samples[-1].at - started,
        cpu=cpu,
        cpu_window_s=meter.seconds,
    )
