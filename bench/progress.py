"""Following an agent through its /metrics: acknowledged, delivered, backlog; when it connected.

Every /metrics request counts the outbox backlog (a scan of the undelivered rows on the agent's
database thread), so polls are spaced: 0.2 s while timing a run, 0.5 s for large backlogs.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Self

import httpx

from bench.rig import ACKED_PREFIX, BACKLOG, DELIVERED, UNACKED_PREFIX, BenchError, total
from tests.agent_process import AgentProcess

_CONNECTED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*connected to \S+ as '([^']+)'")


@dataclass(frozen=True)
class Counts:
    """One /metrics sample, at monotonic time `at`."""

    at: float
    acked: float
    delivered: float
    backlog: float
    unacked: float


def _exited(pid: int) -> bool:
    """True once the process is gone or a zombie (exited, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


class Probe:
    """Reads an agent's /metrics over one kept-alive connection (a new client per request
    costs the bench ~10 ms of CPU, which the agent would feel on a two-core machine)."""

    def __init__(self, agent: AgentProcess) -> None:
        self.agent = agent
        self._client = httpx.Client(base_url=agent.url, timeout=5.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def metrics(self) -> dict[str, float]:
        """The /metrics samples, keyed by `name{labels}` as printed."""
        response = self._client.get("/metrics")
        response.raise_for_status()
        samples = {}
        for line in response.text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def counts(self) -> Counts:
        metrics = self.metrics()
        return Counts(
            at=time.monotonic(),
            acked=total(metrics, ACKED_PREFIX),
            delivered=metrics.get(DELIVERED, 0.0),
            backlog=metrics.get(BACKLOG, 0.0),
            unacked=total(metrics, UNACKED_PREFIX),
        )

    def follow(
        self, done: str, target: float, within_s: float, poll_s: float = 0.2
    ) -> list[Counts]:
        """Sample until the `done` count ("acked" or "delivered") reaches `target`."""
        samples: list[Counts] = []
        deadline = time.monotonic() + within_s
        while True:
            try:
                sample: Counts | None = self.counts()
            except httpx.HTTPError:  # a busy agent may answer late: poll again
                sample = None
            if sample is not None:
                samples.append(sample)
                if getattr(sample, done) >= target:
                    return samples
            elif _exited(self.agent.pid):
                raise BenchError(f"the agent exited\n{self.agent.log_tail()}")
            if time.monotonic() > deadline:
                last = samples[-1] if samples else None
                raise BenchError(
                    f"agent {done} did not reach {target:.0f} within {within_s:.0f} s "
                    f"(last: {last})"
                )
            time.sleep(poll_s)


def first_reaching(samples: list[Counts], done: str, target: float) -> Counts:
    """The first sample whose `done` count reached `target`."""
    for sample in samples:
        if getattr(sample, done) >= target:
            return sample
    raise BenchError(f"no sample with {done} >= {target}")


def connected_at(agent: AgentProcess, client_id: str, after: float) -> float | None:
    """Wall-clock time of the agent's last CONNACK for `client_id` logged after `after`."""
    found = None
    for line in agent.log_path.read_text(errors="replace").splitlines():
        match = _CONNECTED.match(line)
        if match is None or match.group(2) != client_id:
            continue
        stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if stamp >= after:
            found = stamp
    return found
