"""`community-edge demo`: its own mosquitto, alerts on the API, a clean Ctrl-C that stops the broker
too; without mosquitto, one line naming the command that installs it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gateway.cli import main
from gateway.demo_leftovers import clean_stale
from tests.agent_process import wait_for


def _stopped(demo: subprocess.Popen[bytes], log: Path, within_s: float = 30.0) -> int:
    """Ctrl-C, and the exit code once it stopped. One that does not stop within `within_s` says
    what each of its threads was waiting for (SIGUSR1: `run_until_signal`), is killed (no process
    left for the next test) and fails the test with its log's tail."""
    demo.send_signal(signal.SIGINT)
    try:
        return demo.wait(timeout=within_s)
    except subprocess.TimeoutExpired:
        demo.send_signal(signal.SIGUSR1)
        wait_for(lambda: "most recent call first" in log.read_text(), what="the demo's stacks")
        demo.send_signal(signal.SIGUSR2)
        wait_for(lambda: "task " in log.read_text(), what="the demo's tasks")
        demo.kill()
        demo.wait()
        pytest.fail(
            f"the demo did not stop within {within_s} s of Ctrl-C:\n{log.read_text()[-20000:]}"
        )


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_its_own_mosquitto_raises_alerts_and_stops_it_on_ctrl_c(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "demo",
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
            lambda: re.search(
                r"broker:\s+mqtt://127\.0\.0\.1:(\d+)\s+\(mosquitto .*?API:\s+(\S+).*?"
                r"API token:\s+(\S+)",
                log.read_text(),
                re.S,
            ),
            what="the demo banner",
        )
        broker_port, url, token = int(banner.group(1)), banner.group(2), banner.group(3)
        assert _accepts(broker_port)
        headers = {"Authorization": f"Bearer {token}"}
        alerts = wait_for(
            lambda: httpx.get(f"{url}/v1/alerts", headers=headers).json()["items"],
            within_s=30,
            what="a scenario's alert",
        )
        assert alerts[0]["community"] == "sunshine-garden"  # the registered community it plays
        # an SOS is in the alert store before the outbox's batch of readings reaches the
        # embedded store (the express path): the readings follow within a flush
        wait_for(
            lambda: httpx.get(f"{url}/v1/readings", headers=headers).json()["items"],
            within_s=30,
            what="the scenario's readings",
        )
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    finally:
        code = _stopped(demo, log)
    assert code == 0, log.read_text()
    assert "demo stopped" in log.read_text()
    assert "Traceback" not in log.read_text()
    assert not _accepts(broker_port), "the demo's mosquitto outlived it"


def test_the_demo_prints_a_working_token_command_and_removes_its_temporary_dir(
    tmp_path: Path,
) -> None:
    """The banner's `tokens create` works as printed (its data dir and community, trial #2), and
    the temporary data dir, API token included, is gone after Ctrl-C (trial #11)."""
    log = tmp_path / "demo.log"
    temp = tmp_path / "tmp"
    temp.mkdir()
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "demo", "--api-port", "0", "--rate", "5"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TMPDIR": str(temp)},
        )
    try:
        banner = wait_for(
            lambda: re.search(
                r"data dir:\s+(\S+)\s+\(temporary.*?API:\s+(\S+).*?"
                r"community:\s+(\S+).*?(community-edge tokens create [^\n]+)",
                log.read_text(),
                re.S,
            ),
            what="the demo banner",
        )
        data_dir, url, community, command = (banner.group(i) for i in (1, 2, 3, 4))
        assert Path(data_dir).parent == temp
        assert community == "sunshine-garden"
        argv = shlex.split(command.replace("你的名字", "王值班"))
        created = subprocess.run(
            [sys.executable, "-m", "gateway.cli", *argv[1:]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        answer = httpx.get(f"{url}/v1/alerts", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
    finally:
        code = _stopped(demo, log)
    assert code == 0, log.read_text()
    assert f"its temporary data dir {data_dir} is removed" in log.read_text()
    assert not list(temp.glob("community-edge-demo-*"))


def test_demo_without_mosquitto_names_the_install_command_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    # Debian's mosquitto is in /usr/sbin, which the demo also looks in: here it looks nowhere else
    monkeypatch.setattr("gateway.demo.SBIN_DIRS", (str(empty),))

    code = main(["demo", "--api-port", "0", "--data-dir", str(tmp_path / "data")])

    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("community-edge demo: mosquitto is not installed")
    assert "apt-get install mosquitto" in line


def _start_demo(log: Path, temp: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "demo", "--api-port", "0", "--rate", "5"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TMPDIR": str(temp)},
        )


def _broker_port(log: Path) -> int:
    banner = wait_for(
        lambda: re.search(r"broker:\s+mqtt://127\.0\.0\.1:(\d+)", log.read_text()),
        what="the demo banner",
    )
    return int(banner.group(1))


def test_a_killed_demos_directories_and_broker_are_cleared_at_the_next_start(
    tmp_path: Path,
) -> None:
    """SIGKILL leaves the temporary data dir, the broker's dir and the broker itself (its own
    session); the next demo removes them, and leaves a running demo's alone."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    foreign = temp / "community-edge-demo-by-hand"  # no owner file: not a demo's, kept
    foreign.mkdir()
    killed = _start_demo(tmp_path / "killed.log", temp)
    try:
        orphan_port = _broker_port(tmp_path / "killed.log")
    finally:
        killed.kill()
        killed.wait(timeout=30)
    left = sorted(p.name for p in temp.glob("community-edge-demo-*"))
    assert len(left) == 3, left  # data dir, broker dir, the foreign one
    assert _accepts(orphan_port), "the killed demo's broker was expected to outlive it"
    second = _start_demo(tmp_path / "second.log", temp)
    try:
        _broker_port(tmp_path / "second.log")
        wait_for(lambda: not _accepts(orphan_port), what="the orphan broker stopped")
        mine = sorted(p.name for p in temp.glob("community-edge-demo-*"))
        assert foreign.name in mine
        assert not (set(left) - {foreign.name}) & set(mine)
        assert len(mine) == 3  # the second demo's two and the foreign one
    finally:
        try:
            code = _stopped(second, tmp_path / "second.log")
        finally:
            clean_stale(temp)  # should the demo not have: no broker of this test outlives it
    assert code == 0, (tmp_path / "second.log").read_text()
    assert [p.name for p in temp.glob("community-edge-demo-*")] == [foreign.name]
