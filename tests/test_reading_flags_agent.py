"""Flagged readings through the agent as users run it: a real mosquitto, one agent writing to a
real VictoriaMetrics and one keeping readings itself. The flag reaches the readings API, the
time-series store (a field) and `/metrics`; a payload naming another device keeps the topic's."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.agent_process import AgentProcess, wait_for
from tests.mqtt_publisher import publish
from tests.servers import MosquittoServer, VictoriaMetricsServer

COMMUNITY = "reading-flags"
SOS = f"ce/{COMMUNITY}/b1/tuya-sos-button"
SMOKE = f"ce/{COMMUNITY}/b1/lorawan-smoke-detector"
FLAGGED = "community_edge_readings_flagged_total"
ACKED = "community_edge_messages_acked_total"


def _acked(agent: AgentProcess) -> int:
    return int(sum(v for k, v in agent.metrics().items() if k.startswith(ACKED + "{")))


def test_flags_reach_the_readings_api_the_store_and_metrics(
    tmp_path: Path, mosquitto: MosquittoServer, victoria_metrics: VictoriaMetricsServer
) -> None:
    now_ms = time.time_ns() // 1_000_000
    iso_now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000))
    messages: list[tuple[str, dict[str, Any]]] = [
        (f"{SOS}/sos-zero", {"battery": 81, "ts": 0}),
        (f"{SOS}/sos-seconds", {"battery": 82, "ts": now_ms // 1000}),  # epoch_auto: fine
        (f"{SOS}/sos-future", {"battery": 83, "ts": now_ms + 86_400_000}),
        (f"{SOS}/sos-sane", {"battery": 84, "ts": now_ms - 1000}),
        # the LoRaWAN server names another device: the topic's device is kept, and flagged
        (
            f"{SMOKE}/lsm-7",
            {"data": "AF8A1w==", "time": iso_now, "deviceInfo": {"deviceName": "lsm-8"}},
        ),
    ]
    agents = [
        AgentProcess(tmp_path / "flags-tsdb", mosquitto.url, ["--tsdb-url", victoria_metrics.url]),
        AgentProcess(tmp_path / "flags-local", mosquitto.url),
    ]
    for agent in agents:
        agent.start()
    try:
        sent = publish(mosquitto.url, messages)
        for agent in agents:
            wait_for(lambda a=agent: _acked(a) >= sent, what=f"{sent} messages acknowledged")
        local_agent = agents[1]

        def stored() -> dict[str, list[str]]:
            items = local_agent.get("/v1/readings", community=COMMUNITY, limit=100)["items"]
            return {r["device_id"]: r["flags"] for r in items} if len(items) >= sent else {}

        flags_by_device = wait_for(stored, what="the readings stored")
        metrics = [agent.metrics() for agent in agents]

        def exported() -> dict[tuple[str, str], list[float]]:
            series = victoria_metrics.export(f'{{__name__=~".*flag_.*",community="{COMMUNITY}"}}')
            found = {(s.name, s.labels["device_id"]): [v for _, v in s.samples()] for s in series}
            return found if len(found) >= 3 else {}

        in_store = wait_for(exported, within_s=30, what="flag fields in VictoriaMetrics")
    finally:
        for agent in agents:
            agent.stop()
    print(f"\nflags by device: {flags_by_device}\nflag series in VictoriaMetrics: {in_store}")
    assert flags_by_device == {
        "sos-zero": ["time_zero"],
        "sos-seconds": [],
        "sos-future": ["time_future"],
        "sos-sane": [],
        "lsm-7": ["device_mismatch"],
    }
    for samples in metrics:
        assert samples[f'{FLAGGED}{{flag="time_zero"}}'] == 1
        assert samples[f'{FLAGGED}{{flag="time_future"}}'] == 1
        assert samples[f'{FLAGGED}{{flag="device_mismatch"}}'] == 1
    # fields, one sample each, on the device's own series (no flag tag splits it)
    assert in_store == {
        ("sos_flag_time_zero", "sos-zero"): [1.0],
        ("sos_flag_time_future", "sos-future"): [1.0],
        ("smoke_flag_device_mismatch", "lsm-7"): [1.0],
    }
    log = agents[1].log_path.read_text()
    assert "flagged device_mismatch" in log
    assert "lsm-8" not in log  # what the payload claims is not repeated into the log
