"""An upgrade keeps everything: the data dir of the previous release, with readings still in its
outbox, an open SOS alert and an escalation step still to come, opened by this release.

The previous release is built from git history in the test (`git archive` of PREVIOUS_RELEASE, the
last landed main before the stores carried schema versions) and run as users run it, with its own
code (`python -m gateway.cli run` from that tree), killed with SIGKILL mid-way, then this release
starts on the same data dir: every reading reaches the time-series store once, the alert is the
same alert, and its escalation step fires once, on time, from the stored timer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent_process import TOKEN, AgentProcess, client_id_for
from tests.mqtt_publisher import publish
from tests.servers import MosquittoFactory, VictoriaMetricsFactory, free_port
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS_RELEASE = "3cb9b23"  # the last landing before this release (flat edge/, no versions)
COMMUNITY = "upg"
POLICY = {
    "severity": "critical",
    "steps": [
        {"after_s": 0, "tier": "duty_officer"},
        {"after_s": 15, "tier": "property_manager"},
    ],
    "repeat_every_s": 600,
}
ENV = {
    "COMMUNITY_EDGE_ESCALATION__POLICIES": json.dumps([POLICY]),
    "COMMUNITY_EDGE_ESCALATION__CHECK_S": "0.1",
}
READINGS = 50


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's tree, from this repository's history."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{PREVIOUS_RELEASE}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, (
        f"commit {PREVIOUS_RELEASE} is not in this clone's history ({found.stderr.strip()}); "
        "the upgrade test needs a full clone (git fetch --unshallow)"
    )
    tree = tmp_path_factory.mktemp("previous-release")
    archive = tree / "release.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), PREVIOUS_RELEASE],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    archive.unlink()
    return tree


class _PreviousAgent:
    """The previous release's `community-edge run`, from its own tree."""

    def __init__(self, tree: Path, data_dir: Path, mqtt_url: str, tsdb_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            *("-m", "gateway.cli", "run", "--mqtt-url", mqtt_url, "--data-dir", str(data_dir)),
            *("--api-port", str(self.port), "--api-token", TOKEN),
            *("--client-id", client_id_for(data_dir), "--tsdb-url", tsdb_url),
            *("--tsdb-org", "c", "--tsdb-bucket", "r"),
        ]
        # its own tree first on the path: the previous release's code, not this one's
        env = {**os.environ, **ENV, "PYTHONPATH": str(tree)}
        self.log = data_dir.parent / "previous-agent.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=tree, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        wait_until(self._answers, 30, "the previous release's API")

    def _answers(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    def get(self, path: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = httpx.get(f"{self.url}{path}", params=params, headers=headers, timeout=10.0)
        response.raise_for_status()
        return response.json()

    def acked(self) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=5.0).text
        return sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith("community_edge_messages_acked_total")
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def stop_after() -> Iterator[list[_PreviousAgent]]:
    agents: list[_PreviousAgent] = []
    yield agents
    for agent in agents:
        agent.kill()


def test_the_previous_releases_data_dir_carries_over_whole(
    tmp_path: Path,
    previous_release: Path,
    mosquitto_factory: MosquittoFactory,
    victoria_metrics_factory: VictoriaMetricsFactory,
    stop_after: list[_PreviousAgent],
) -> None:
    broker = mosquitto_factory()
    tsdb = victoria_metrics_factory()
    tsdb.stop()  # down for the previous release: its readings stay in its outbox
    data_dir = tmp_path / "agent"
    old = _PreviousAgent(previous_release, data_dir, broker.url, tsdb.url)
    stop_after.append(old)
    # its API answers before its MQTT session is up: publish once it has connected
    wait_until(
        lambda: "edge.mqtt: connected" in old.log.read_text(), 30, "the previous release on MQTT"
    )

    door = "ce/upg/b1/zigbee-door-contact/door-{n}"
    sent = publish(
        broker.url,
        [(door.format(n=n), {"contact": n % 2 == 0, "battery": 90}) for n in range(READINGS)],
    )
    publish(broker.url, [("ce/upg/b1/tuya-sos-button/sos-up", {"action": "emergency"})])
    wait_until(lambda: old.acked() >= sent + 1, 30, "the previous release acknowledged all")
    opened = wait_until(
        lambda: [a for a in old.get("/v1/alerts", community=COMMUNITY)["items"]],
        20,
        "the SOS alert opened by the previous release",
    )
    (alert,) = opened
    assert old.get(f"/v1/alerts/{alert['id']}")["history"][0]["tier"] == "duty_officer"
    old.kill()  # SIGKILL: readings in the outbox, the alert open, its next step 15 s ahead
    # it was the previous release that ran: its session logged under its flat module name
    assert "edge.mqtt: connected" in old.log.read_text(), old.log.read_text()[-2000:]

    tsdb.start()
    new = AgentProcess(
        data_dir,
        broker.url,
        ["--tsdb-url", tsdb.url, "--tsdb-org", "c", "--tsdb-bucket", "r"],
        env=ENV,
    )
    try:
        new.start()
        started = time.time()
        # the same alert, still open, with its one event so far
        carried = new.get(f"/v1/alerts/{alert['id']}")
        assert carried["alert"]["status"] == "active"
        assert [e["kind"] for e in carried["history"]] == ["opened"]

        def stored() -> set[tuple[str, int]]:
            points = {
                (series.labels["device_id"], ts)
                for series in tsdb.export(f'{{__name__=~"door_.*",community="{COMMUNITY}"}}')
                for ts, _ in series.samples()
            }
            return points if len(points) >= READINGS else set()

        points = wait_until(stored, 30, "every reading of the old outbox in the time-series store")
        history = wait_until(
            lambda: (h := new.get(f"/v1/alerts/{alert['id']}")["history"]) and len(h) >= 2 and h,
            30,
            "the property manager's step",
        )
        time.sleep(2)  # a clock that must move: a doubled step would come within the check period
        history = new.get(f"/v1/alerts/{alert['id']}")["history"]
    finally:
        new.__exit__(None, None, None)
    assert len(points) == READINGS  # each reading once
    assert (
        sum(
            len(series.values)
            for series in tsdb.export(f'{{__name__="door_battery",community="{COMMUNITY}"}}')
        )
        == READINGS
    )  # one sample each, no doubles
    assert [(e["kind"], e["tier"]) for e in history] == [
        ("opened", "duty_officer"),
        ("escalated", "property_manager"),
    ]
    opened_at = datetime.fromisoformat(history[0]["at"]).timestamp()
    escalated_at = datetime.fromisoformat(history[1]["at"]).timestamp()
    # on time, from the stored timer: never early, and at once when it fell due while nobody ran
    assert escalated_at >= opened_at + 15
    assert escalated_at <= max(opened_at + 15, started) + 5
