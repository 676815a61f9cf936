"""The walking skeleton, end to end with real servers: simulate -> mosquitto -> agent -> VictoriaMetrics
and the alert API. The agent runs as `community-edge run` in its own process.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.agent_process import AgentProcess, simulate, wait_for
from tests.mqtt_publisher import publish
from tests.mqtt_recorder import Recorder
from tests.servers import MosquittoServer, VictoriaMetricsServer

# Which field each model's messages are checked by, read straight from the payload the device sent.
_CHECKED: dict[str, tuple[str, Callable[[dict[str, Any]], float] | None]] = {
    "zigbee-ias-smoke": ("smoke_battery", lambda p: float(p["battery"])),
    "tuya-sos-button": ("sos_battery", lambda p: float(p["battery"])),
    "tuya-fall-radar": ("fall_linkquality", lambda p: float(p["linkquality"])),
    "hikvision-access-controller": ("access_major_type", None),
}


def _expected_point(model: str, payload: dict[str, Any]) -> tuple[str, int, float] | None:
    """(metric, timestamp ms, value) the time-series server must hold for one sent message."""
    metric, value_of = _CHECKED[model]
    if model == "hikvision-access-controller":
        event = payload.get("AccessControllerEvent")
        if event is None:
            return None  # a heartbeat carries no major type
        seconds = datetime.fromisoformat(payload["dateTime"]).timestamp()
        return (
            metric,
            int(seconds) * 1000 + event["serialNo"] % 1000,
            float(event["majorEventType"]),
        )
    assert value_of is not None
    return metric, int(payload["ts"]), value_of(payload)


def test_a_simulated_community_reaches_the_time_series_server_exactly(
    tmp_path: Path, mosquitto: MosquittoServer, victoria_metrics: VictoriaMetricsServer
) -> None:
    community = "e2e-load"
    recorder = Recorder(mosquitto.url, f"ce/{community}/#")
    with AgentProcess(
        tmp_path / "agent", mosquitto.url, ["--tsdb-url", victoria_metrics.url]
    ) as agent:
        summary = simulate(
            mosquitto.url,
            "--devices",
            "40",
            "--rate",
            "400",
            "--duration",
            "3",
            "--community",
            community,
        )
        assert summary["failed"] == 0
        assert summary["sent"] >= 1000
        received = recorder.wait_for(summary["sent"], timeout=20)  # then its marker: no extras
        recorder.close()
        assert len(received) == summary["sent"]
        assert len(recorder.messages) == summary["sent"]
        wait_for(
            lambda: (
                sum(
                    v
                    for k, v in agent.metrics().items()
                    if k.startswith('community_edge_sink_delivered_total{sink="tsdb"')
                )
                >= summary["sent"]
            ),
            what="agent delivered everything to the time-series server",
        )
        metrics = agent.metrics()
        assert metrics['community_edge_outbox_depth{lane="readings",sink="tsdb"}'] == 0
        assert (
            sum(v for k, v in metrics.items() if k.startswith("community_edge_dead_letters_total"))
            == 0
        )

    expected: dict[tuple[str, str], set[tuple[int, float]]] = defaultdict(set)
    for topic, raw in recorder.messages:
        _, _, _building, model, device_id = topic.split("/")
        point = _expected_point(model, json.loads(raw))
        if point is not None:
            metric, ts, value = point
            expected[(metric, device_id)].add((ts, value))
    stored: dict[tuple[str, str], set[tuple[int, float]]] = defaultdict(set)
    for series in victoria_metrics.export(f'{{community="{community}"}}'):
        if (series.name, series.labels["device_id"]) in expected:
            stored[(series.name, series.labels["device_id"])].update(series.samples())
            assert series.labels["building"].startswith("b")
            assert series.labels["model"] in _CHECKED
    assert stored == expected
    assert sum(len(v) for v in stored.values()) >= 0.9 * summary["sent"]


def test_scenarios_raise_alerts_that_people_acknowledge_and_resolve(
    tmp_path: Path, mosquitto: MosquittoServer, victoria_metrics: VictoriaMetricsServer
) -> None:
    community = "e2e-alerts"
    with AgentProcess(
        tmp_path / "agent", mosquitto.url, ["--tsdb-url", victoria_metrics.url]
    ) as agent:
        streamed: list[str] = []
        listening = threading.Event()

        def listen() -> None:
            with httpx.stream(
                "GET",
                f"{agent.url}/v1/alerts/stream",
                params={"community": community},
                headers=agent.headers,
                timeout=30.0,
            ) as response:
                listening.set()
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        streamed.append(line.removeprefix("event: "))
                    if len(streamed) >= 6:
                        return

        listener = threading.Thread(target=listen)
        listener.start()
        assert listening.wait(10)
        for scenario in ("elder-sos", "smoke-alarm", "fall", "door-forced"):
            simulate(mosquitto.url, "--scenario", scenario, "--community", community)
        listener.join(30)
        # live: sos, smoke, possible-fall, fall (which resolves possible-fall), door-forced
        assert sorted(streamed) == ["opened"] * 5 + ["resolved"]
        page = wait_for(
            lambda: (
                (p := agent.get("/v1/alerts", community=community))["items"]
                and {a["rule"] for a in p["items"]} >= {"sos", "smoke", "fall", "door-forced"}
                and p
            ),
            what="four alerts",
        )
        by_rule = {a["rule"]: a for a in page["items"]}
        assert by_rule["sos"]["severity"] == "critical"
        assert by_rule["smoke"]["severity"] == "critical"
        assert by_rule["fall"]["severity"] == "critical"
        assert by_rule["door-forced"]["severity"] == "major"
        assert all(a["community"] == community for a in page["items"])
        assert {a["rule"]: a["status"] for a in page["items"]} == {
            "sos": "active",
            "smoke": "active",
            "fall": "active",
            "door-forced": "active",
            "possible-fall": "resolved",  # superseded by the confirmed fall
        }
        # closed by the fall alert, linked to it (not cleared by the device)
        assert by_rule["possible-fall"]["resolved_by"] == "rule"
        assert by_rule["possible-fall"]["superseded_by"] == by_rule["fall"]["id"]

        sos = by_rule["sos"]["id"]
        acked = agent.post(f"/v1/alerts/{sos}/ack", {"note": "calling the resident"})
        assert acked.status_code == 200
        assert acked.json()["status"] == "acknowledged"
        assert agent.post(f"/v1/alerts/{sos}/ack").status_code == 409
        resolved = agent.post(f"/v1/alerts/{sos}/resolve", {"note": "resident is fine"})
        assert resolved.json()["status"] == "resolved"
        detail = agent.get(f"/v1/alerts/{sos}")
        assert [e["kind"] for e in detail["history"]] == ["opened", "acknowledged", "resolved"]
        assert agent.get("/v1/alerts", community=community, status="active")["items"]

        # alert events reach the time-series server too
        wait_for(
            lambda: victoria_metrics.export(
                f'{{__name__=~"alert_event.*",community="{community}"}}'
            ),
            what="alert events in the time-series server",
        )

    # alerts survive a restart of the agent
    with AgentProcess(
        tmp_path / "agent", mosquitto.url, ["--tsdb-url", victoria_metrics.url]
    ) as agent:
        assert agent.get(f"/v1/alerts/{sos}")["alert"]["status"] == "resolved"
        assert len(agent.get("/v1/alerts", community=community, status="active")["items"]) == 3


def test_bad_payloads_become_dead_letters_and_good_ones_keep_flowing(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    community = "e2e-bad"
    with AgentProcess(tmp_path / "agent", mosquitto.url) as agent:
        base = f"ce/{community}/b1"
        bad = [
            (f"{base}/zigbee-ias-smoke/s1", b"\xff not json"),
            (f"{base}/zigbee-ias-smoke/s1", b'{"battery": 50}'),  # smoke missing
            (f"{base}/zigbee-ias-smoke/s1", b'{"smoke": "maybe"}'),
            (f"{base}/tuya-sos-button/s2", b"[]"),
        ] * 250
        good = (f"{base}/tuya-sos-button/s2", b'{"action": "emergency"}')
        publish(mosquitto.url, [*bad, good])  # every PUBACK in
        alerts = wait_for(
            lambda: agent.get("/v1/alerts", community=community)["items"], what="SOS alert"
        )
        assert [a["rule"] for a in alerts] == ["sos"]
        metrics = agent.metrics()
        dead = {k: v for k, v in metrics.items() if k.startswith("community_edge_dead_letters")}
        assert dead == {
            'community_edge_dead_letters_total{cause="not_json"}': 250,
            'community_edge_dead_letters_total{cause="missing_field"}': 250,
            'community_edge_dead_letters_total{cause="wrong_type"}': 250,
            'community_edge_dead_letters_total{cause="not_object"}': 250,
        }
        letters = agent.get("/v1/dead-letters", limit=1000)
        assert len(letters) == 1000
        assert {d["cause"] for d in letters} == {
            "not_json",
            "missing_field",
            "wrong_type",
            "not_object",
        }
        readings = wait_for(  # the reading store is fed from the outbox, after the alert
            lambda: agent.get("/v1/readings", device_id="s2")["items"], what="s2's reading"
        )
        assert [r["fields"].get("action") for r in readings] == ["emergency"]
        log = agent.log_path.read_text()
    # logged once per cause and topic, not once per message
    assert log.count("dead letter (not_json)") == 1


def test_time_series_server_down_then_back_loses_nothing(
    tmp_path: Path, mosquitto: MosquittoServer, victoria_metrics_factory: Any
) -> None:
    community = "e2e-tsdb-down"
    tsdb = victoria_metrics_factory()
    with AgentProcess(tmp_path / "agent", mosquitto.url, ["--tsdb-url", tsdb.url]) as agent:
        tsdb.kill()
        summary = simulate(
            mosquitto.url,
            "--devices",
            "10",
            "--rate",
            "200",
            "--duration",
            "2",
            "--community",
            community,
        )
        backlog = 'community_edge_outbox_depth{lane="readings",sink="tsdb"}'
        wait_for(lambda: agent.metrics()[backlog] == summary["sent"], what="backlog held")
        health = agent.get("/healthz")
        assert health["status"] == "degraded"
        assert health["sinks"]["tsdb"]["ok"] is False
        tsdb.restart()
        wait_for(lambda: agent.metrics()[backlog] == 0, within_s=60, what="backlog drained")
    stored = tsdb.count_samples(f'{{__name__="sos_battery",community="{community}"}}')
    assert stored == summary["by_model"]["tuya-sos-button"]


def test_broker_unreachable_at_start_is_retried_and_reported(
    tmp_path: Path, mosquitto_factory: Any
) -> None:
    broker: MosquittoServer = mosquitto_factory()
    broker.stop()
    agent = AgentProcess(tmp_path / "agent", broker.url)
    try:
        agent.start(wait_ready=False)
        health = wait_for(
            lambda: (h := agent.get("/healthz"))["mqtt"]["sessions"]["alarm"]["last_error"] and h,
            what="the broker error reported",
        )
        assert health["status"] == "degraded"
        assert health["mqtt"]["connected"] is False
        assert httpx.get(f"{agent.url}/readyz").status_code == 503
        broker.restart()
        agent.wait_ready(within_s=30)
        simulate(broker.url, "--scenario", "elder-sos", "--community", "e2e-late-broker")
        wait_for(lambda: agent.get("/v1/alerts")["items"], what="SOS after the broker came up")
    finally:
        agent.__exit__(None, None, None)
    assert "cannot connect" in agent.log_path.read_text()
