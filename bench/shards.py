"""`python -m bench.shards`: a queued burst drained by 1 and by 2 shards (`run --shards N`).

For each shard count: start the gateway, pause its shard processes (SIGSTOP: their sessions
stay connected, the broker queues for them), queue a burst of messages across many buildings,
resume them (SIGCONT) and time from then until every shard has acknowledged every message (a shard acknowledges the
messages of other shards' buildings too, having dropped them unread) and the time-series store
has taken every reading. CPU seconds are the shard processes' own (user + system), from /proc.
The machine may be shared: run it several times and give ranges.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from bench.machine import cpu_seconds, load_average
from bench.rig import DELIVERED, Rig, total
from tests.agent_process import AgentProcess
from tests.mqtt_publisher import Publisher

START_S = 180.0
ACKED = "community_edge_messages_acked_total"


class _Gateway(AgentProcess):
    def wait_api(self, within_s: float = START_S) -> None:
        super().wait_api(within_s)

    def wait_ready(self, within_s: float = START_S) -> None:
        super().wait_ready(within_s)


def _shard_dirs(agent: AgentProcess, shards: int) -> list[Path]:
    return [agent.data_dir, *(agent.data_dir / f"shard-{n}" for n in range(1, shards))]


def _urls(agent: AgentProcess, shards: int) -> list[str]:
    urls = [agent.url]
    for directory in _shard_dirs(agent, shards)[1:]:
        deadline = time.monotonic() + START_S
        while not (directory / "api-url").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{directory}: no API")
            time.sleep(0.1)
        urls.append((directory / "api-url").read_text().strip())
    return urls


def _metrics(url: str) -> dict[str, float]:
    """One shard's own samples: shard 0's /metrics also carries its siblings' (labelled
    `shard="shard-k"`, its own `shard="shard-0"`), which would count them twice."""
    samples = {}
    for line in httpx.get(f"{url}/metrics", timeout=10.0).text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            if 'shard="shard-' in key:
                if 'shard="shard-0"' not in key:
                    continue
                key = key.replace('shard="shard-0",', "").replace('{shard="shard-0"}', "")
            samples[key] = float(value)
    return samples


def _wait_ready(urls: list[str]) -> None:
    deadline = time.monotonic() + START_S
    for url in urls:
        while httpx.get(f"{url}/readyz", timeout=5.0).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready")
            time.sleep(0.1)


def _pids(agent: AgentProcess, shards: int) -> list[int]:
    out = []
    for directory in _shard_dirs(agent, shards):
        words = (directory / "agent.lock").read_text().split()
        out.append(int(words[-1]))
    return out


def _burst(community: str, buildings: int, devices: int, per_device: int) -> list[Any]:
    start_ms = int(time.time() * 1000) - 3_600_000
    return [
        (
            f"ce/{community}/b{b}/zigbee-pir-motion/pir-{b}-{d}",
            {"occupancy": n % 2 == 0, "battery": 90, "ts": start_ms + n, "linkquality": 100},
        )
        for n in range(per_device)
        for b in range(buildings)
        for d in range(devices)
    ]


def measure(rig: Rig, shards: int, messages: int, buildings: int = 40) -> dict[str, Any]:
    devices = 5
    per_device = max(1, messages // (buildings * devices))
    community = f"bench-shards-{shards}-{int(time.time())}"
    burst = _burst(community, buildings, devices, per_device)
    agent = _Gateway(
        rig.root / f"shards-{shards}-{int(time.time())}",
        rig.broker.url,
        ["--tsdb-url", rig.tsdb.url, "--shards", str(shards)],
    )
    agent.start()
    try:
        urls = _urls(agent, shards)
        _wait_ready(urls)
        pids = _pids(agent, shards)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        with Publisher(rig.broker.url, max_inflight=1000, timeout=300) as publisher:
            publisher.publish_many(burst)
        cpu0 = [cpu_seconds(f"/proc/{pid}/stat") for pid in pids]
        first = time.monotonic()
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        while True:
            samples = [_metrics(url) for url in urls]
            acked = [total(s, ACKED) for s in samples]
            now = time.monotonic()
            delivered = sum(s.get(DELIVERED, 0.0) for s in samples)
            if all(a >= len(burst) for a in acked) and delivered >= len(burst):
                break
            time.sleep(0.05)
        elapsed = now - first
        cpu = [cpu_seconds(f"/proc/{pid}/stat") - c for pid, c in zip(pids, cpu0, strict=True)]
    finally:
        agent.stop()
    return {
        "shards": shards,
        "messages": len(burst),
        "seconds": round(elapsed, 2),
        "msgs_per_s": round(len(burst) / elapsed),
        "cpu_s_per_shard": [round(c, 2) for c in cpu],
        "cpu_us_per_msg": round(sum(cpu) / len(burst) * 1e6, 1),
        "load_average": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with Rig() as rig:
        for _ in range(args.rounds):
            for shards in args.shards:
                print(json.dumps(measure(rig, shards, args.messages)), flush=True)


if __name__ == "__main__":
    main()
