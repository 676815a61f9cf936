"""The bench's cost figures: CPU per message from a paced load, and the targets they are judged by."""

from __future__ import annotations

from bench.cost import CostResult, _rates
from bench.latency import LatencyResult
from bench.publish import PublishResult
from bench.report import cost_keys, cost_summary, cost_table


def _result(rate: float, agent_pct: float, latencies_ms: list[float]) -> CostResult:
    load = PublishResult(sent=int(rate * 10), failed=0, seconds=10.0)
    latency = LatencyResult(
        label=f"cost-{rate:.0f}",
        target_rate=rate,
        load=load,
        presses=len(latencies_ms),
        latencies_ms=latencies_ms,
        cpu={"agent": agent_pct, "others": 3.0},
    )
    return CostResult(rate, latency)


def test_cpu_per_message_counts_the_presses_with_the_load() -> None:
    # 20 % of a core over 500 msgs/s of load and 10 presses a second: 0.2 s / 510 messages
    result = _result(500, 20.0, [2.0] * 10)
    assert round(result.us_per_message) == round(1e6 * 0.2 / 510)


def test_the_targets_are_judged_at_500_msgs_per_s_only() -> None:
    keys = cost_keys([_result(500, 9.0, [1.0] * 99 + [4.0]), _result(4000, 60.0, [900.0] * 10)])
    assert keys["cpu_pct_at"] == {"500": 9.0, "4000": 60.0}
    assert keys["cost_targets"] == {"cpu<=10%@500": True, "sos_p99<5ms@500": True}
    missed = cost_keys([_result(500, 25.0, [1.0] * 98 + [6.0, 7.0])])
    assert missed["cost_targets"] == {"cpu<=10%@500": False, "sos_p99<5ms@500": False}


def test_the_cost_table_names_the_figures_and_the_verdicts() -> None:
    machine = {"cpu_count": 2, "loadavg_before": [1, 1, 1], "loadavg_after": [1, 1, 1]}
    summary = cost_summary("quick", {**machine, "versions": {}}, [_result(500, 12.0, [3.0])], 9.0)
    text = cost_table(summary)
    assert "agent CPU at 500 msgs/s (+10 SOS/s)" in text
    assert "12.0% of a core" in text
    assert "<= 10%: MISSED" in text
    assert "p99 < 5 ms: ok" in text


def test_the_counters_the_cost_follows_are_reported_per_second() -> None:
    before = {
        'community_edge_lane_commits_total{lane="alarm"}': 100.0,
        'community_edge_sink_writes_total{sink="tsdb"}': 7.0,
        "community_edge_readings_total": 5.0,
    }
    after = {
        'community_edge_lane_commits_total{lane="alarm"}': 340.0,
        'community_edge_sink_writes_total{sink="tsdb"}': 47.0,
        'community_edge_sink_writes_total{sink="alert-store"}': 100.0,
        "community_edge_readings_total": 5005.0,
    }
    assert _rates(before, after, 10.0) == {
        'commits{lane="alarm"}': 24.0,
        'writes{sink="tsdb"}': 4.0,
        'writes{sink="alert-store"}': 10.0,
    }
    result = CostResult(500, _result(500, 9.0, [1.0]).latency, _rates(before, after, 10.0))
    machine = {"cpu_count": 2, "loadavg_before": [1, 1, 1], "loadavg_after": [1, 1, 1]}
    text = cost_table(cost_summary("quick", {**machine, "versions": {}}, [result], 9.0))
    assert 'at 500 msgs/s: commits{lane="alarm"} 24.0, writes{sink="tsdb"} 4.0' in text
