"""Outage backlog: VictoriaMetrics stops, the agent keeps ingesting into its outbox, then the
server returns and the backlog is written.

The backlog stands for an outage at a steady rate (10 minutes at 1,000 msgs/s in the full run):
device timestamps span the outage, but it is published as fast as the broker takes it. The
server is stopped cleanly (SIGTERM), so nothing it acknowledged before is lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from bench.ingest import processes
from bench.machine import CpuMeter
from bench.progress import Probe, first_reaching
from bench.publish import PublisherPool, PublishResult
from bench.rig import BenchError, Rig
from bench.traffic import Traffic


@dataclass(frozen=True)
class DrainResult:
    backlog: int  # readings in the outbox when the server came back
    stored: int
    publish: PublishResult
    outage_ingest_s: float  # first publish -> every message acknowledged, server down
    resume_s: float  # server started -> the last sample before the first batch delivered
    drain_s: float  # that sample -> backlog empty
    drained: float  # points delivered between those two samples
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.drained / self.drain_s if self.drain_s > 0 else 0.0


def measure_drain(
    rig: Rig, pool: PublisherPool, probe: Probe, traffic: Traffic, poll_s: float = 0.5
) -> DrainResult:
    """Stop the server, build the backlog, start the server, time the backlog's delivery.

    The drain is timed from the last sample before the first delivery to the sample that saw the
    backlog empty: at most one poll longer than it was, so the rate errs low.
    """
    agent = probe.agent
    base = probe.counts()
    rig.tsdb.stop()
    pool.prepare(traffic)
    started = pool.go()
    publish = pool.finish()
    samples = probe.follow(
        "acked",
        base.acked + publish.sent,
        within_s=max(120.0, publish.sent / 200),
        poll_s=0.5,
    )
    outage_ingest_s = samples[-1].at - started
    backlog = probe.counts().backlog - base.backlog
    if backlog < publish.sent:
        raise BenchError(f"outbox backlog {backlog:.0f} < {publish.sent} messages acknowledged")
    back = time.monotonic()
    rig.tsdb.start()
    meter = CpuMeter(processes(rig, agent, pool))
    meter.start()
    samples = [
        replace(base, at=back),  # nothing delivered yet when the server starts
        *probe.follow(
            "delivered",
            base.delivered + publish.sent,
            within_s=max(180.0, publish.sent / 100),
            poll_s=poll_s,
        ),
    ]
    cpu = meter.stop()
    first = first_reaching(samples, "delivered", base.delivered + 1)
    before = samples[samples.index(first) - 1]
    last = samples[-1]
    stored = rig.wait_points(traffic.community, publish.sent)
    return DrainResult(
        backlog=int(backlog),
        stored=stored,
        publish=publish,
        outage_ingest_s=outage_ingest_s,
        resume_s=max(0.0, before.at - back),
        drain_s=last.at - before.at,
        drained=last.delivered - before.delivered,
        cpu=cpu,
    )
