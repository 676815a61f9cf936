"""Agent memory with a device registry of N devices, under a full-speed load from those devices.

A fresh agent runs with `--devices FILE` (a CSV of the mixed community); its resident set size
(VmRSS in /proc/<pid>/status) is read idle, sampled while the load runs, and read again once
every point is delivered; VmHWM is the peak.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from bench.machine import memory_mb
from bench.progress import Probe
from bench.publish import PublisherPool
from bench.rig import BenchError, Rig
from bench.traffic import Traffic, min_span_s, registry_csv, roster


@dataclass(frozen=True)
class MemoryResult:
    devices: int  # registered
    messages: int  # published under load, from that many distinct devices at most
    idle_mb: float  # after start, before the load
    loaded_mb: float  # after the load, everything delivered
    peak_mb: float  # VmHWM: the most it was resident at any time
    start_s: float  # `run` until the API answers (the registry is loaded by then)


class _Sampler:
    """Reads a process's RSS every 0.2 s in a thread, so a peak between reads is seen too."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.peak = max(self.peak, memory_mb(self.pid)[0])
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


def measure_memory(rig: Rig, pool: PublisherPool, devices: int, messages: int) -> MemoryResult:
    community = f"bench-mem-{devices}"
    members = roster(devices, community)
    registry = rig.root / f"devices-{devices}.csv"
    registry.write_text(registry_csv(members, community), encoding="utf-8")
    agent = rig.agent(f"memory-{devices}", ["--devices", str(registry)])
    started = time.monotonic()
    agent.start()
    start_s = time.monotonic() - started
    probe = Probe(agent)
    try:
        idle, _ = memory_mb(agent.pid)
        traffic = Traffic(community, members, messages, min_span_s(messages, devices), time.time())
        pool.prepare(traffic)
        sampler = _Sampler(agent.pid)
        try:
            base = probe.counts()
            pool.go()
            publish = pool.finish()
            probe.follow(
                "delivered",
                base.delivered + publish.sent,
                within_s=max(120.0, publish.sent / 200),
            )
        finally:
            sampler.close()
        loaded, peak = memory_mb(agent.pid)
        dead = sum(
            v for k, v in probe.metrics().items() if k.startswith("community_edge_dead_letters")
        )
        if dead:
            raise BenchError(f"{dead:.0f} dead letters with the {devices}-device registry")
    finally:
        probe.close()
        rig.stop_agent(agent, forget=True)
    return MemoryResult(devices, publish.sent, idle, loaded, max(peak, sampler.peak), start_s)
