"""sd_notify against a real unix datagram socket: READY after the broker, watchdog pings, STOPPING.

The socket stands where systemd's would: the test binds it, passes its path in `$NOTIFY_SOCKET`
and `$WATCHDOG_USEC` to `community-edge run`, and reads what the agent tells it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.systemd_notify import Notifier
from tests.agent_process import AgentProcess
from tests.servers import MosquittoServer


class NotifySocket:
    """A bound unix datagram socket, as systemd holds one; `next()` returns each notification."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path if not path.startswith("@") else "\0" + path[1:])
        self.seen: list[tuple[float, dict[str, str]]] = []

    def next(self, within_s: float = 20.0) -> dict[str, str]:
        self.sock.settimeout(within_s)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            raise AssertionError(f"no notification within {within_s} s") from None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines())
        self.seen.append((time.monotonic(), fields))
        return fields

    def wait_for(
        self, matches: Callable[[dict[str, str]], bool], within_s: float = 30.0
    ) -> list[dict[str, str]]:
        """Every notification up to and including the first that `matches`."""
        deadline = time.monotonic() + within_s
        got: list[dict[str, str]] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching notification within {within_s} s: {got}")
            got.append(self.next(remaining))
            if matches(got[-1]):
                return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    # a short path: sun_path holds 108 bytes, and pytest's tmp_path can be longer
    directory = tempfile.mkdtemp(prefix="ce-notify-", dir="/tmp")
    listener = NotifySocket(os.path.join(directory, "notify"))
    yield listener
    listener.close()
    shutil.rmtree(directory, ignore_errors=True)


def test_notify_sends_one_datagram_of_lines(notify_socket: NotifySocket) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.path})
    assert notifier.notify(READY=1, STATUS="up")
    assert notify_socket.next() == {"READY": "1", "STATUS": "up"}
    notifier.close()


def test_abstract_socket_name() -> None:
    name = f"@community-edge-test-{os.getpid()}"
    listener = NotifySocket(name)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": name})
        assert notifier.notify(WATCHDOG=1)
        assert listener.next() == {"WATCHDOG": "1"}
        notifier.close()
    finally:
        listener.close()


def test_without_a_service_manager_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.notify(READY=1)


def test_watchdog_interval_is_for_this_process_only() -> None:
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_s == 30.0
    mine = str(os.getpid())
    assert Notifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": mine}).watchdog_s == 2.0
    assert Notifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}).watchdog_s is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_s is None


async def test_ready_only_when_ready_then_pings_at_half_the_interval(
    notify_socket: NotifySocket,
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "400000"})
    reason: list[str] = ["MQTT session x not connected"]
    task = asyncio.create_task(notifier.supervise(lambda: reason[0] if reason else None))
    try:
        waiting = await asyncio.to_thread(notify_socket.wait_for, lambda f: True)
        assert waiting[-1]["STATUS"] == "waiting: MQTT session x not connected"
        assert int(waiting[-1]["EXTEND_TIMEOUT_USEC"]) == 800_000  # four ticks of 0.2 s
        assert "READY" not in waiting[-1]
        reason.clear()
        before = await asyncio.to_thread(notify_socket.wait_for, lambda f: "READY" in f)
        assert all("READY" not in f for f in before[:-1])
        for _ in range(4):
            assert await asyncio.to_thread(notify_socket.next) == {"WATCHDOG": "1"}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        notifier.close()
    pings = [at for at, fields in notify_socket.seen if fields == {"WATCHDOG": "1"}][-4:]
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert all(0.15 <= gap <= 0.6 for gap in gaps), gaps


@pytest.mark.broker
def test_agent_ready_after_the_broker_pings_and_stops(
    notify_socket: NotifySocket, tmp_path: Path
) -> None:
    """`community-edge run` under a notify socket: READY only once the broker answers; pings
    every WATCHDOG_USEC/2; after a SIGKILL the restarted agent is READY again; STOPPING on stop."""
    broker = MosquittoServer()  # its port is chosen, nothing listens on it yet
    env = {"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "1000000"}
    agent = AgentProcess(tmp_path / "data", broker.url, env=env)
    try:
        agent.start(wait_ready=False)
        waiting = notify_socket.wait_for(lambda f: "EXTEND_TIMEOUT_USEC" in f)
        waiting += notify_socket.wait_for(lambda f: "EXTEND_TIMEOUT_USEC" in f)
        assert not [f for f in waiting if "READY" in f]
        assert "not connected" in waiting[-1]["STATUS"]

        broker.start()
        notify_socket.wait_for(lambda f: f.get("READY") == "1")
        assert agent.get("/healthz")["mqtt"]["connected"] is True
        for _ in range(3):
            assert notify_socket.wait_for(lambda f: "WATCHDOG" in f)[-1] == {"WATCHDOG": "1"}
        pings = [at for at, fields in notify_socket.seen if fields == {"WATCHDOG": "1"}][-3:]
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert all(0.3 <= gap <= 1.0 for gap in gaps), gaps  # 0.5 s, under load a little more

        restarts = []
        for _ in range(3):
            killed = time.monotonic()
            agent.kill()
            agent.start(wait_ready=False)
            notify_socket.wait_for(lambda f: f.get("READY") == "1")
            restarts.append(time.monotonic() - killed)
        print(f"SIGKILL to READY=1: {', '.join(f'{s:.2f} s' for s in restarts)}")

        assert agent.stop() == 0
        stopping = notify_socket.wait_for(lambda f: "STOPPING" in f)
        assert stopping[-1]["STOPPING"] == "1"
    finally:
        agent.__exit__(None, None, None)
        broker.close()
