"""`community-edge demo` works with nothing set up: embedded broker, alerts on the API, clean Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.agent_process import wait_for


def test_demo_with_the_embedded_broker_raises_alerts_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "demo",
                "--embedded-broker",
                "--api-port",
                "0",
                "--data-dir",
                str(tmp_path / "data"),
                "--rate",
                "50",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        banner = wait_for(
            lambda: re.search(r"API:\s+(\S+).*?API token:\s+(\S+)", log.read_text(), re.S),
            what="the demo banner",
        )
        url, token = banner.group(1), banner.group(2)
        assert "embedded Python broker" in log.read_text()
        headers = {"Authorization": f"Bearer {token}"}
        alerts = wait_for(
            lambda: httpx.get(f"{url}/v1/alerts", headers=headers).json()["items"],
            within_s=30,
            what="a scenario's alert",
        )
        assert alerts[0]["community"] == "demo"
        readings = httpx.get(f"{url}/v1/readings", headers=headers).json()["items"]
        assert readings
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=30)
    assert code == 0, log.read_text()
    assert "demo stopped" in log.read_text()
    assert "Traceback" not in log.read_text()
