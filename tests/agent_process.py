"""The agent as users run it: `community-edge run` in a child process, for integration tests."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from tests.servers import free_port
from tests.waiting import wait_until

TOKEN = "integration-test-token"


class AgentProcess:
    """`community-edge run` on free ports; `stop()` is SIGINT, `kill()` is SIGKILL."""

    def __init__(
        self,
        data_dir: Path,
        mqtt_url: str,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.mqtt_url = mqtt_url
        self.extra_args = list(extra_args)
        self.env = {**os.environ, **(env or {})}  # e.g. COMMUNITY_EDGE_TESTING__HOLD_ACKS_S
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-agent.log"
        # One per data dir, stable across restarts (the broker keeps its persistent sessions):
        # `agent-agent` for every test let the session broker queue one test's traffic for the
        # next test's agent (an SOS of another community phoned under pytest-xdist).
        self.client_id = client_id_for(data_dir)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True) -> None:
        command = [
            sys.executable,
            "-m",
            "gateway.cli",
            "run",
            "--mqtt-url",
            self.mqtt_url,
            "--data-dir",
            str(self.data_dir),
            "--api-port",
            str(self.port),
            "--api-token",
            TOKEN,
            "--client-id",
            self.client_id,
            *self.extra_args,
        ]
        log = self.log_path.open("ab")
        with log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        try:
            self.wait_api()
            if wait_ready:
                self.wait_ready()
        except BaseException:  # no agent left running behind a failed start (it held ports)
            if self._process.poll() is None:
                self.kill()
            raise

    def wait_api(self, within_s: float = 45.0) -> None:
        """Until /healthz answers: 2-4 s here, over 20 s on a machine at load 10 (a wait on a
        condition: a longer limit costs nothing when the agent is quick)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                httpx.get(f"{self.url}/healthz", timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError(f"agent API did not answer within {within_s} s\n{self.log_tail()}")

    def wait_ready(self, within_s: float = 20.0) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            self._check_alive()
            if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                return
            time.sleep(0.05)
        raise AssertionError(f"agent not ready within {within_s} s\n{self.log_tail()}")

    def _check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise AssertionError(f"agent exited with {self._process.returncode}\n{self.log_tail()}")

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, headers=self.headers, timeout=10.0)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, headers=self.headers, timeout=10.0)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def metrics(self) -> dict[str, float]:
        """The /metrics samples, keyed by `name{labels}` as printed."""
        text = httpx.get(f"{self.url}/metrics", timeout=5.0).text
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def stop(self) -> int:
        """SIGINT, as Ctrl-C; returns the exit code."""
        assert self._process is not None
        self._process.send_signal(signal.SIGINT)
        return self._process.wait(timeout=30)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def kill(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def simulate(mqtt_url: str, *args: str) -> dict[str, Any]:
    """Run `community-edge simulate ... --json` and return its summary."""
    import json

    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "simulate", "--mqtt-url", mqtt_url, "--json", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def client_id_for(data_dir: Path) -> str:
    """The MQTT client id of the test agent of `data_dir`: its own, the same on every start."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
    return f"agent-{data_dir.name}-{digest}"


def wait_for(condition: Any, within_s: float = 20.0, what: str = "condition") -> Any:
    """Poll `condition()` until it returns something truthy; return it (see `wait_until`)."""
    return wait_until(condition, within_s, what, poll=0.1)
