"""The machine the figures come from: cores, load, versions; and per-process CPU and memory."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def versions(mosquitto: str, tsdb_url: str) -> dict[str, str]:
    """Python, paho-mqtt, mosquitto (`-h` first line) and VictoriaMetrics.

    VictoriaMetrics reports its version in /metrics; Debian's build leaves it empty, so the
    package's version stands in for it then.
    """
    try:
        help_text = subprocess.run(
            [mosquitto, "-h"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        broker = help_text.splitlines()[0].strip() if help_text else "unknown"
    except OSError:
        broker = "unknown"
    try:
        text = httpx.get(f"{tsdb_url}/metrics", timeout=5.0).text
        found = re.search(r'vm_app_version\{[^}]*version="([^"]*)"', text)
        tsdb = found.group(1) if found else ""
    except httpx.HTTPError:
        tsdb = ""
    return {
        "python": platform.python_version(),
        "paho_mqtt": str(paho.mqtt.__version__),
        "mosquitto": broker,
        "victoria_metrics": tsdb or _package_version("victoria-metrics"),
    }


def _package_version(package: str) -> str:
    try:
        answer = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return f"{answer.stdout.strip()} (Debian package)" if answer.returncode == 0 else "unknown"


def process(pid: int) -> str:
    """The stat file of a whole process (every thread), for `CpuMeter`."""
    return f"/proc/{pid}/stat"


def main_thread(pid: int) -> str:
    """The stat file of a process's first thread: a Python program's main thread."""
    return f"/proc/{pid}/task/{pid}/stat"


def cpu_seconds(stat_path: str) -> float:
    """User + system CPU time from a /proc stat file, 0 when the process is gone."""
    try:
        with open(stat_path, encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # after the command: state(0) ... utime(11) stime(12)
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB: resident now and its peak."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024  # kB
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def written_bytes(pid: int) -> int:
    """Bytes a process has sent towards storage (`write_bytes` of /proc/PID/io, counted when it
    dirties a page: the outbox's log, its checkpoints, every store), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/io", encoding="ascii") as io:
            for line in io:
                key, _, value = line.partition(":")
                if key == "write_bytes":
                    return int(value)
    except OSError:
        pass
    return 0


def fsync_ms(directory: Path, seconds: float = 2.0, interval_s: float = 0.01) -> list[float]:
    """How long the disk under `directory` takes to make 4 kB durable: a page overwritten and
    fdatasync'd every `interval_s` for `seconds` (what an outbox commit waits for, the floor of
    an SOS's latency), sorted, in ms."""
    path = directory / "bench-fsync.probe"
    taken = []
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(descriptor, bytes(4096), 0)
        os.fsync(descriptor)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            os.pwrite(descriptor, os.urandom(4096), 0)
            started = time.perf_counter()
            os.fdatasync(descriptor)
            taken.append((time.perf_counter() - started) * 1000)
            time.sleep(interval_s)
    finally:
        os.close(descriptor)
        path.unlink(missing_ok=True)
    return sorted(taken)


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy since boot (idle and I/O wait left out), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(f) for f in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _TICKS_PER_S


@dataclass
class CpuMeter:
    """CPU used by named processes or threads (their /proc stat files) between `start()` and
    `stop()`, in % of one core; `machine` is every core's busy time, `others` what processes
    outside the named ones used (another job on the machine shows there)."""

    stats: Mapping[str, list[str]]
    _cpu: dict[str, float] | None = None
    _wall: float = 0.0
    seconds: float = 0.0  # the window of the last `stop()`

    def _sample(self) -> dict[str, float]:
        sample = {name: sum(cpu_seconds(p) for p in paths) for name, paths in self.stats.items()}
        sample["machine"] = machine_busy_seconds()
        return sample

    def start(self) -> None:
        self._cpu = self._sample()
        self._wall = _now()

    def stop(self) -> dict[str, float]:
        """Percent of one core per name since `start()`, with `machine` and `others`."""
        assert self._cpu is not None, "start() first"
        seconds = self.seconds = max(_now() - self._wall, 1e-9)
        after = self._sample()
        used = {name: 100 * (after[name] - self._cpu[name]) / seconds for name in after}
        ours = sum(
            used[name]
            for name, paths in self.stats.items()
            if not any("/task/" in path for path in paths)  # a thread is part of its process
        )
        used["others"] = max(0.0, used["machine"] - ours)
        return {name: round(value, 1) for name, value in used.items()}


def _now() -> float:
    return os.times().elapsed
