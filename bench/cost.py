"""What a message costs at ordinary load: the agent's CPU at fixed rates, with SOS presses beside.

A paced load of the mixed community (500 and 4,000 msgs/s) with ten SOS presses a second, as a
busy evening at a gateway: the agent's CPU time (user + system, every thread, from /proc) over the
window, in % of one core and per message, and the presses' latency to the alert stream. CPU time,
not wall time, so that other work on the machine does not count against the agent. Beside them,
what the cost follows per second (from /metrics): outbox transactions per lane and writes per
sink; each costs the same whatever its size. And what the agent writes to storage per message
(/proc/PID/io): a gateway's eMMC or SD card wears by it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench.latency import AlertListener, LatencyPlan, LatencyResult, measure_latency
from bench.machine import fsync_ms, written_bytes
from bench.progress import Probe
from bench.publish import PublisherPool
from bench.rig import Rig
from bench.traffic import Member

COST_RATES = (500.0, 4000.0)  # the ordinary and busy loads, msgs/s
PRESSES_PER_S = 10  # SOS presses beside the load
CPU_TARGET_PCT = 10.0  # at 500 msgs/s: a small box also runs video, access control, ...
P99_AT_500_MS = 5.0  # Node-RED's p99 at 500 msgs/s, publish -> receiver
# the /metrics counters whose rates the cost phase reports, by the name they are reported under
COUNTED = {
    "community_edge_lane_commits_total": "commits",
    "community_edge_sink_writes_total": "writes",
}


@dataclass(frozen=True)
class CostResult:
    """The agent at one paced rate: CPU and SOS latency."""

    rate: float
    latency: LatencyResult
    # per second over the level: `commits{lane="alarm"}`, `writes{sink="tsdb"}`, ...
    per_s: dict[str, float] = field(default_factory=dict)
    written: int = 0  # bytes the agent sent towards storage over the level
    seconds: float = 0.0  # the level's length, load and presses and settling
    # the disk alone just before the level: 4 kB fdatasync'd, sorted ms (an SOS waits for one)
    disk_ms: list[float] = field(default_factory=list)

    def disk_percentile(self, p: float) -> float | None:
        """Nearest-rank percentile of `disk_ms`."""
        if not self.disk_ms:
            return None
        return self.disk_ms[max(0, min(len(self.disk_ms), round(p / 100 * len(self.disk_ms))) - 1)]

    @property
    def agent_pct(self) -> float:
        return self.latency.cpu.get("agent", 0.0)

    @property
    def achieved(self) -> float:
        load = self.latency.load.rate if self.latency.load else 0.0
        return load + PRESSES_PER_S

    @property
    def kb_written_per_message(self) -> float:
        """What the agent wrote to storage per message handled, in kB (1,000 bytes)."""
        return self.written / 1000 / max(self.achieved * self.seconds, 1.0)

    @property
    def us_per_message(self) -> float:
        """Agent CPU time per message handled, in microseconds."""
        return 1e6 * self.agent_pct / 100 / max(self.achieved, 1.0)


def measure_cost(
    rig: Rig,
    pool: PublisherPool,
    probe: Probe,
    listener: AlertListener,
    load: tuple[str, tuple[Member, ...]],
    seconds: float,
    rates: tuple[float, ...] = COST_RATES,
) -> list[CostResult]:
    """`seconds` of each rate in `rates`, with `PRESSES_PER_S` presses a second throughout."""
    plan = LatencyPlan(
        presses=int(seconds * PRESSES_PER_S),
        interval_s=1 / PRESSES_PER_S,
        warmup_s=2.0,
        settle_s=5.0,
    )
    results = []
    for rate in rates:
        disk = fsync_ms(probe.agent.data_dir)
        pid = probe.agent.pid
        before, started, wrote = probe.metrics(), time.monotonic(), written_bytes(pid)
        latency = measure_latency(rig, pool, probe, listener, plan, f"cost-{rate:.0f}", rate, load)
        after, seconds = probe.metrics(), time.monotonic() - started
        written = written_bytes(pid) - wrote
        results.append(
            CostResult(rate, latency, _rates(before, after, seconds), written, seconds, disk)
        )
    return results


def _rates(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """The `COUNTED` counters' increase per second, keyed `commits{lane="alarm"}` and so on."""
    rates = {}
    for key, value in after.items():
        name, brace, labels = key.partition("{")
        if name in COUNTED:
            short = COUNTED[name] + brace + labels
            rates[short] = round((value - before.get(key, 0.0)) / max(seconds, 1e-9), 1)
    return rates
