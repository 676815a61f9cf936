"""The bench's yardstick: each raw consumer flavour, in a process of its own, against a real
mosquitto, drains exactly what was queued for its persistent session (and its count is a count)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.raw_consumer import FLAVOURS
from tests.mqtt_publisher import publish
from tests.servers import MosquittoServer

pytestmark = pytest.mark.broker


def _consumer(
    server: MosquittoServer, flavour: str, mode: str, expected: int = 0
) -> dict[str, float]:
    host, port = server.url.removeprefix("mqtt://").split(":")
    command = [
        sys.executable,
        *("-m", "bench.raw_consumer", "--flavour", flavour, "--host", host, "--port", port),
        *("--client-id", f"yardstick-{flavour}", "--topic", f"yard/{flavour}/#"),
        *("--expected", str(expected), "--timeout", "20", mode),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    answer: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, (done.stdout, done.stderr)
    return answer


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_raw_consumer_drains_what_its_session_queued(
    mosquitto: MosquittoServer, flavour: str
) -> None:
    assert _consumer(mosquitto, flavour, "setup") == {"received": 0, "seconds": 0.0}
    sent = publish(mosquitto.url, [(f"yard/{flavour}/d{n}", b"{}") for n in range(300)])
    assert sent == 300
    answer = _consumer(mosquitto, flavour, "drain", expected=300)
    assert answer["received"] == 300
    assert 0 < answer["seconds"] < 20
    assert answer["cpu_s"] > 0


def test_a_raw_consumer_that_misses_messages_says_so(mosquitto: MosquittoServer) -> None:
    host, port = mosquitto.url.removeprefix("mqtt://").split(":")
    command = [
        sys.executable,
        *("-m", "bench.raw_consumer", "--flavour", "mqtt5", "--host", host, "--port", port),
        *("--client-id", "yardstick-empty", "--topic", "yard/empty/#"),
        *("--expected", "5", "--timeout", "1", "drain"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert json.loads(done.stdout.strip()) == {"error": "received 0 of 5"}
