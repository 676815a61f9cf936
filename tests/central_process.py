"""`community-edge api` in a child process, as a central deployment runs it, for integration tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from gateway.tokens import open_tokens
from tests.servers import free_port


class CentralApiProcess:
    """The central API on a port chosen up front (nothing listens there until `start`)."""

    def __init__(self, data_dir: Path, store_url: str) -> None:
        self.data_dir = data_dir
        self.store_url = store_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-central.log"
        self._process: subprocess.Popen[bytes] | None = None

    def create_token(self, role: str, *communities: str) -> str:
        """A token in the API's data dir (what `community-edge tokens create` does)."""
        tokens = open_tokens(self.data_dir)
        try:
            return tokens.create(role, list(communities), f"test {role}")[1]
        finally:
            tokens.close()

    def start(self, within_s: float = 30.0) -> None:
        command = [
            *(sys.executable, "-m", "gateway.cli", "api", "--store", self.store_url),
            *("--data-dir", str(self.data_dir), "--port", str(self.port)),
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AssertionError(
                    f"central API exited with {self._process.returncode}\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"central API did not answer within {within_s} s\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self._process is not None, "start() first"
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> int:
        assert self._process is not None
        self._process.send_signal(signal.SIGINT)
        code = self._process.wait(timeout=30)
        self._process = None
        return code

    def get(self, token: str, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"{self.url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10.0,
        )
        response.raise_for_status()
        return response.json()

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
            self.stop()
