"""Liveness through a real broker: silent devices go offline, a broker outage is one gateway alert,
and the registry file is reloaded while the agent runs. Exact counts of alerts opened and resolved.

The agent runs as users run it (`community-edge run`, a child process) with a copy of the shipped
profiles in which the SOS button checks in every 3 s instead of every 25 h, and the liveness
monitor looking every 0.25 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from edge.decode import default_profile_dir
from tests.agent_process import AgentProcess, wait_for
from tests.mqtt_publisher import Publisher
from tests.servers import MosquittoFactory

MODEL = "tuya-sos-button"
HEARTBEAT_S = 3
COMMUNITY = "live"
HEADER = "device_id,model,community,building,unit\n"
OFFLINE = "device-offline"
BROKER_LOST = "gateway-broker-lost"


def _profiles(tmp_path: Path) -> Path:
    directory = tmp_path / "profiles"
    directory.mkdir()
    for path in default_profile_dir().glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if path.stem == MODEL:
            text = text.replace("heartbeat_seconds: 90000", f"heartbeat_seconds: {HEARTBEAT_S}")
            assert f"heartbeat_seconds: {HEARTBEAT_S}" in text
        (directory / path.name).write_text(text, encoding="utf-8")
    return directory


def _rows(*device_ids: str) -> str:
    return HEADER + "".join(f"{d},{MODEL},{COMMUNITY},b1,\n" for d in device_ids)


class _Devices:
    """SOS buttons publishing check-ins (battery reports) at QoS 1, each PUBACK awaited."""

    def __init__(self, url: str) -> None:
        self.publisher = Publisher(url)

    def check_in(self, device_id: str) -> None:
        self.publisher.publish(f"ce/{COMMUNITY}/b1/{MODEL}/{device_id}", {"battery": 80})

    @contextmanager
    def keep_alive(self, *device_ids: str, every_s: float = 0.5) -> Iterator[None]:
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(every_s):
                for device_id in device_ids:
                    try:
                        self.check_in(device_id)
                    except (AssertionError, RuntimeError, ValueError):
                        return  # the broker went away: the test decides what that means

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)

    def close(self) -> None:
        self.publisher.close()


def _alerts(agent: AgentProcess, rule: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = agent.get("/v1/alerts", limit=500)["items"]
    return sorted((a for a in items if a["rule"] == rule), key=lambda a: a["device_id"])


def _open(agent: AgentProcess, rule: str) -> list[str]:
    return [a["device_id"] for a in _alerts(agent, rule) if a["status"] != "resolved"]


def _agent(tmp_path: Path, url: str, devices: Path) -> AgentProcess:
    return AgentProcess(
        tmp_path / "agent",
        url,
        ["--devices", str(devices), "--profiles-dir", str(_profiles(tmp_path))],
        env={
            "COMMUNITY_EDGE_LIVENESS__CHECK_S": "0.25",
            "COMMUNITY_EDGE_LIVENESS__BROKER_LOST_AFTER_S": "1.5",
            "COMMUNITY_EDGE_LIVENESS__REGISTRY_CHECK_S": "0.25",
        },
    )


def test_silent_devices_go_offline_and_a_broker_outage_is_one_alert(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory()
    ids = [f"sos-{i}" for i in range(6)]
    devices = tmp_path / "devices.csv"
    devices.write_text(_rows(*ids))
    with _agent(tmp_path, broker.url, devices) as agent:
        buttons = _Devices(broker.url)
        try:
            for device_id in ids:
                buttons.check_in(device_id)
            with buttons.keep_alive(*ids[:4]):
                # sos-4 and sos-5 fall silent; the other four check in every 0.5 s
                wait_for(lambda: len(_open(agent, OFFLINE)) == 2, 15, "two offline alerts")
                # a clock that must move: a heartbeat interval, and nobody else follows them
                time.sleep(HEARTBEAT_S)
                assert _open(agent, OFFLINE) == ["sos-4", "sos-5"]
                offline = agent.get("/v1/devices", status="offline")["items"]
                assert [d["device_id"] for d in offline] == ["sos-4", "sos-5"]
                assert offline[0]["reason"].startswith("no message for")

                buttons.check_in("sos-5")
                wait_for(lambda: _open(agent, OFFLINE) == ["sos-4"], 10, "sos-5 back")
                assert agent.get("/v1/devices/sos-5")["status"] == "online"
                (sos5,) = [a for a in _alerts(agent, OFFLINE) if a["device_id"] == "sos-5"]
                assert (sos5["status"], sos5["resolved_by"]) == ("resolved", "device")

            broker.kill()
            wait_for(lambda: _open(agent, BROKER_LOST), 15, "the broker-lost alert")
            # a clock that must move: every device silent far past its interval
            time.sleep(2 * HEARTBEAT_S)
            assert _open(agent, BROKER_LOST) == [agent.client_id]
            assert _open(agent, OFFLINE) == ["sos-4"]  # no new per-device alert
            assert httpx.get(f"{agent.url}/readyz", timeout=5).status_code == 503

            broker.start()
            wait_for(lambda: not _open(agent, BROKER_LOST), 30, "broker-lost resolved")
            buttons.close()
            buttons = _Devices(broker.url)  # a fresh connection rather than paho's retry timer
            for device_id in ids:  # everybody checks in again within the interval
                buttons.check_in(device_id)
            wait_for(lambda: not _open(agent, OFFLINE), 10, "sos-4 back")
            wait_for(  # the positive marker: all six check-ins seen after the outage
                lambda: agent.metrics()['community_edge_devices{status="online"}'] == 6,
                10,
                "six devices online",
            )
        finally:
            buttons.close()

        assert len(_alerts(agent, OFFLINE)) == 2  # opened in all: sos-4 and sos-5, once each
        assert [a["status"] for a in _alerts(agent, BROKER_LOST)] == ["resolved"]
        metrics = agent.metrics()
        assert metrics['community_edge_devices{status="online"}'] == 6


def test_the_registry_reloads_while_the_agent_runs(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory()
    devices = tmp_path / "devices.csv"
    devices.write_text(_rows("sos-0"))
    with _agent(tmp_path, broker.url, devices) as agent:
        buttons = _Devices(broker.url)
        try:
            buttons.check_in("sos-new")
            pending = wait_for(lambda: agent.get("/v1/devices/unregistered"), 10, "listed")
            assert [(e["device_id"], e["cause"]) for e in pending] == [
                ("sos-new", "unknown_device")
            ]

            devices.write_text(_rows("sos-0", "sos-new"))
            wait_for(lambda: not agent.get("/v1/devices/unregistered"), 10, "registered")
            buttons.check_in("sos-new")
            wait_for(lambda: agent.get("/v1/devices/sos-new")["status"] == "online", 10, "online")

            devices.write_text(_rows("sos-0", "sos-new") + f"x-1,toaster,{COMMUNITY},b1,\n")
            health = wait_for(
                lambda: (h := agent.get("/healthz"))["devices"]["registry_error"] and h, 10, "err"
            )
            assert "unknown model 'toaster'" in health["devices"]["registry_error"]
            assert health["devices"]["registered"] == 2  # the last good registry stays
            metrics = agent.metrics()
            assert metrics['community_edge_registry_reloads_total{result="ok"}'] == 1
            assert metrics['community_edge_registry_reloads_total{result="failed"}'] == 1
            readings = metrics["community_edge_readings_total"]
            buttons.check_in("sos-new")
            wait_for(lambda: agent.metrics()["community_edge_readings_total"] > readings, 10)
        finally:
            buttons.close()
