"""The bench's alert latency figures alone (`--only latency`): the same keys as the full run."""

from __future__ import annotations

from bench.ingest import IngestResult
from bench.latency import LatencyResult, _device_part
from bench.publish import PublishResult
from bench.report import TELEMETRY_LEVEL, latency_keys, latency_summary, latency_table
from edge.identifier import id_problem

MACHINE = {
    "cpu_count": 2,
    "loadavg_before": [1.0, 1.0, 1.0],
    "loadavg_after": [1.0, 1.0, 1.0],
    "versions": {},
}


def _level(label: str, rate: float, latencies_ms: list[float], presses: int) -> LatencyResult:
    load = PublishResult(sent=int(rate * 10), failed=0, seconds=10.0) if rate else None
    return LatencyResult(label, rate, load, presses, latencies_ms, {"agent": 40.0})


def _levels(beside_ms: float) -> list[LatencyResult]:
    return [
        _level("idle", 0.0, [2.0] * 100, 100),
        _level("50%", 2000.0, [3.0] * 100, 100),
        _level("90%", 3600.0, [200.0] * 100, 100),
        _level(TELEMETRY_LEVEL, 3600.0, [5.0] * 99 + [beside_ms], 100),
    ]


def test_the_headline_keys_and_targets_of_alert_latency() -> None:
    keys = latency_keys(_levels(beside_ms=45.0))
    assert keys["alert_p99_ms_idle"] == 2.0
    assert keys["alert_p99_ms"] == 3.0
    assert keys["alert_p99_ms_90"] == 200.0
    assert keys["alert_p99_ms_90_telemetry"] == 5.0  # the 99th of 100 presses
    assert keys["latency_targets"] == {
        "alert_p99<50ms@50%": True,
        "alert_p99<1s@90%": True,
        "alert_p99<50ms@90%telemetry": True,
    }
    late = latency_keys([*_levels(45.0)[:3], _level(TELEMETRY_LEVEL, 3600.0, [60.0] * 2, 2)])
    assert late["latency_targets"]["alert_p99<50ms@90%telemetry"] is False


def test_a_missing_press_is_no_figure_and_misses_the_target() -> None:
    # two of 100 presses never came: the 99th rank falls on a missing one
    keys = latency_keys([_level(TELEMETRY_LEVEL, 3600.0, [5.0] * 98, 100)])
    assert keys["alert_p99_ms_90_telemetry"] is None
    assert keys["latency_targets"]["alert_p99<50ms@90%telemetry"] is False


def test_only_latency_reports_the_rate_the_loads_are_shares_of_and_a_table() -> None:
    ingest = IngestResult(
        messages=20_000,
        stored=20_000,
        seconds=5.0,
        acked_seconds=5.0,
        cpu={},
        preload=PublishResult(sent=20_000, failed=0, seconds=2.0),
    )
    summary = latency_summary("quick", MACHINE, ingest, _levels(45.0), 30.0)
    assert summary["only"] == "latency"
    assert summary["ingest_msgs_per_s"] == 4000
    assert summary["targets"]["alert_p99<50ms@90%telemetry"] is True
    assert set(summary["alert_latency"]) == {"idle", "50%", "90%", TELEMETRY_LEVEL}
    shown = latency_table(summary)
    assert "alert latency p50 / p99 at 90% telemetry" in shown
    assert "target < 50 ms: ok" in shown


def test_every_level_presses_from_a_device_id_the_agent_takes() -> None:
    # "50%" in an id is refused (edge/identifier.py): every press of the level was a dead letter
    for label in ("idle", "50%", "80%", "90%", TELEMETRY_LEVEL, "cost-500", "cost-4000"):
        device = f"sos-{_device_part(label)}-0001"
        assert id_problem(device) is None, (label, device)
