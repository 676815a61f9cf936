"""The bench's results: one JSON object (flat headline keys, details beside) and a table for people."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.cost import CPU_TARGET_PCT, P99_AT_500_MS, PRESSES_PER_S, CostResult
from bench.drain import DrainResult
from bench.ingest import BurstResult, IngestResult
from bench.latency import LatencyResult
from bench.memory import MemoryResult
from bench.raw import LABELS, Yardstick

# The targets: a benchmark's goals, reported, never asserted.
RATIO_TARGET = 0.5
P99_AT_HALF_MS = 50.0
P99_AT_90_MS = 1000.0
# an SOS with telemetry-lane load at 90 % of capacity (#16 part 5): alarms never queue behind it
TELEMETRY_LEVEL = "90% telemetry"
P99_BESIDE_TELEMETRY_MS = 50.0
RSS_TARGET_MB = 150.0
RSS_TARGET_DEVICES = 100_000


@dataclass(frozen=True)
class Results:
    mode: str
    machine: dict[str, Any]
    raw: Yardstick
    ingest: IngestResult
    burst: BurstResult
    latency: list[LatencyResult]
    cost: list[CostResult]
    memory: list[MemoryResult]
    drain: DrainResult
    seconds: float


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _latency(result: LatencyResult) -> dict[str, Any]:
    return {
        "load_msgs_per_s": round(result.target_rate),
        "achieved_msgs_per_s": round(result.load.rate) if result.load else 0,
        "presses": result.presses,
        "missing": result.missing,
        "p50_ms": _round(result.percentile(50)),
        "p99_ms": _round(result.percentile(99)),
        "max_ms": _round(result.max_ms),
        # publish -> handled by the pipeline; the rest of the latency is commit to stream
        "handled_p50_ms": _round(result.handled_percentile(50)),
        "handled_p99_ms": _round(result.handled_percentile(99)),
        "cpu_pct": result.cpu,
    }


def _memory_keys(results: list[MemoryResult]) -> dict[str, Any]:
    memory = {str(m.devices): m for m in results}
    biggest = memory.get(str(RSS_TARGET_DEVICES))
    return {
        "rss_mb": {k: round(m.loaded_mb, 1) for k, m in memory.items()},
        "rss_peak_mb": {k: round(m.peak_mb, 1) for k, m in memory.items()},
        "targets": {
            # judged only when every registered device sent (the full run), else null
            "rss<150MB@100k": None
            if biggest is None or biggest.messages < biggest.devices
            else biggest.peak_mb < RSS_TARGET_MB,
        },
        "memory": {
            k: {
                "messages": m.messages,
                "idle_mb": round(m.idle_mb, 1),
                "loaded_mb": round(m.loaded_mb, 1),
                "peak_mb": round(m.peak_mb, 1),
                "start_seconds": round(m.start_s, 2),
            }
            for k, m in memory.items()
        },
    }


def memory_summary(
    mode: str, machine: dict[str, Any], results: list[MemoryResult], seconds: float
) -> dict[str, Any]:
    """The JSON object of `--only memory`: the memory keys of `summarize`, nothing else."""
    return {
        "mode": mode,
        **machine,
        **_memory_keys(results),
        "only": "memory",
        "seconds": round(seconds, 1),
    }


def latency_keys(results: list[LatencyResult]) -> dict[str, Any]:
    """SOS latency at each load level: the headline keys, their targets and the details."""
    levels = {r.label: r for r in results}
    half, ninety = levels.get("50%"), levels.get("90%")
    p99_half = half.percentile(99) if half else None
    p99_ninety = ninety.percentile(99) if ninety else None
    beside = levels.get(TELEMETRY_LEVEL)
    p99_beside = beside.percentile(99) if beside else None
    return {
        "alert_p50_ms": _round(half.percentile(50) if half else None),
        "alert_p99_ms": _round(p99_half),
        "alert_p99_ms_idle": _round(levels["idle"].percentile(99) if "idle" in levels else None),
        "alert_p99_ms_90": _round(p99_ninety),
        "alert_p99_ms_90_telemetry": _round(p99_beside),
        "latency_targets": {
            "alert_p99<50ms@50%": p99_half is not None and p99_half < P99_AT_HALF_MS,
            "alert_p99<1s@90%": p99_ninety is not None and p99_ninety < P99_AT_90_MS,
            "alert_p99<50ms@90%telemetry": p99_beside is not None
            and p99_beside < P99_BESIDE_TELEMETRY_MS,
        },
        "alert_latency": {label: _latency(r) for label, r in levels.items()},
    }


def latency_summary(
    mode: str,
    machine: dict[str, Any],
    ingest: IngestResult,
    results: list[LatencyResult],
    seconds: float,
) -> dict[str, Any]:
    """The JSON object of `--only latency`: the ingest rate the loads are shares of, and the
    latency keys of `summarize`, nothing else."""
    keys = latency_keys(results)
    return {
        "mode": mode,
        **machine,
        "ingest_msgs_per_s": round(ingest.rate),
        **{k: v for k, v in keys.items() if k != "latency_targets"},
        "targets": keys["latency_targets"],
        "only": "latency",
        "seconds": round(seconds, 1),
    }


def latency_table(summary: dict[str, Any]) -> str:
    """The table of `--only latency`."""
    rows = [
        (
            "ingest, end to end (the loads are shares of it)",
            f"{summary['ingest_msgs_per_s']:,} msgs/s",
            "",
        ),
        *_latency_rows(summary),
    ]
    lines = _heading(summary) + _aligned(rows)
    lines += [
        "",
        "CPU in % of one core:",
        *(
            f"  alert latency at {label}: {_cpu(level['cpu_pct'])}"
            for label, level in summary["alert_latency"].items()
        ),
        f"run took {summary['seconds']} s",
    ]
    return "\n".join(lines)


def summarize(results: Results) -> dict[str, Any]:
    """The JSON object: headline keys first, then the details of each phase."""
    raw, ingest, burst, drain = results.raw.ceiling, results.ingest, results.burst, results.drain
    ratio = ingest.rate / raw.rate
    # CPU time per message: the same yardstick in a unit that other work on the machine
    # disturbs much less than a rate (the agent's burst against the cheapest raw consumer)
    cheapest = results.raw.cheapest
    cpu_ratio = cheapest.us_per_message / max(burst.agent_us_per_message, 1e-9)
    latency = latency_keys(results.latency)
    memory = _memory_keys(results.memory)
    cost = cost_keys(results.cost)
    summary: dict[str, Any] = {
        "mode": results.mode,
        **results.machine,
        "ingest_msgs_per_s": round(ingest.rate),
        "raw_msgs_per_s": round(raw.rate),
        "ingest_ratio": round(ratio, 3),
        "ingest_ratio_cpu": round(cpu_ratio, 3),
        "burst_sent": burst.sent,
        "burst_stored": burst.stored,
        "burst_lost": burst.lost,
        "burst_seconds": round(burst.stored_s, 2),
        "alert_p50_ms": latency["alert_p50_ms"],
        "alert_p99_ms": latency["alert_p99_ms"],
        "alert_p99_ms_idle": latency["alert_p99_ms_idle"],
        "alert_p99_ms_90": latency["alert_p99_ms_90"],
        "alert_p99_ms_90_telemetry": latency["alert_p99_ms_90_telemetry"],
        "cpu_pct_at": cost["cpu_pct_at"],
        "cpu_us_per_msg_at": cost["cpu_us_per_msg_at"],
        "kb_written_per_msg_at": cost["kb_written_per_msg_at"],
        "rss_mb": memory["rss_mb"],
        "rss_peak_mb": memory["rss_peak_mb"],
        "drain_points_per_s": round(drain.rate),
        "drain_backlog": drain.backlog,
        "targets": {
            "ingest_ratio>=0.5": ratio >= RATIO_TARGET,
            "burst_stored_all": burst.lost == 0 and burst.stored == burst.sent,
            **latency["latency_targets"],
            "rss<150MB@100k": memory["targets"]["rss<150MB@100k"],
            **cost["cost_targets"],
        },
        "ingest": {
            "messages": ingest.messages,
            "stored": ingest.stored,
            "seconds": round(ingest.seconds, 2),
            "acked_msgs_per_s": round(ingest.acked_rate),
            "preload_msgs_per_s": round(ingest.preload.rate),
            "cpu_pct": ingest.cpu,
        },
        "raw": {
            "ceiling": raw.flavour,
            "messages": raw.messages,
            "seconds": round(raw.seconds, 3),
            "preload_msgs_per_s": round(raw.preload.rate),
            "cpu_pct": raw.cpu,
            "flavours": {
                r.flavour: {
                    "msgs_per_s": round(r.rate),
                    "seconds": round(r.seconds, 3),
                    "cpu_us_per_msg": round(r.us_per_message, 1),
                    "cpu_pct": r.cpu,
                    "agent_ratio": round(ingest.rate / r.rate, 3),
                }
                for r in results.raw.results
            },
        },
        "burst": {
            "publish_seconds": round(burst.publish.seconds, 2),
            "publish_msgs_per_s": round(burst.publish.rate),
            "agent_cpu_us_per_msg": round(burst.agent_us_per_message, 1),
            "cpu_pct": burst.cpu,
        },
        "alert_latency": latency["alert_latency"],
        "cost": cost["cost"],
        "memory": memory["memory"],
        "drain": {
            "stored": drain.stored,
            "resume_seconds": round(drain.resume_s, 2),
            "drain_seconds": round(drain.drain_s, 2),
            "outage_ingest_msgs_per_s": round(drain.publish.sent / drain.outage_ingest_s),
            "cpu_pct": drain.cpu,
        },
        "seconds": round(results.seconds, 1),
    }
    return summary


def _ok(flag: bool | None) -> str:
    if flag is None:
        return "not judged (not every device sent)"
    return "ok" if flag else "MISSED"


def _ms(value: float | None) -> str:
    return "missing" if value is None else f"{value:,.1f} ms"


def table(summary: dict[str, Any]) -> str:
    """The results as an aligned text table, targets beside the figures they judge."""
    targets = summary["targets"]
    ingest, raw, burst = summary["ingest"], summary["raw"], summary["burst"]
    rows: list[tuple[str, str, str]] = [
        (
            "ingest, end to end (QoS 1, ack after commit)",
            f"{summary['ingest_msgs_per_s']:,} msgs/s",
            f"{ingest['messages']:,} queued, {ingest['stored']:,} stored in "
            f"{ingest['seconds']} s; acked at {ingest['acked_msgs_per_s']:,} msgs/s",
        ),
        *(
            (
                f"raw consumer: {LABELS[name]}",
                f"{flavour['msgs_per_s']:,} msgs/s",
                f"{raw['messages']:,} queued, drained in {flavour['seconds']} s; agent / this "
                f"{flavour['agent_ratio']:.2f}"
                + (" (the ceiling)" if name == raw["ceiling"] else ""),
            )
            for name, flavour in raw["flavours"].items()
        ),
        (
            "ingest / raw (the fastest)",
            f"{summary['ingest_ratio']:.2f}",
            f"target >= {RATIO_TARGET}: {_ok(targets['ingest_ratio>=0.5'])}",
        ),
        (
            "CPU per message: cheapest raw / agent (burst)",
            f"{summary['ingest_ratio_cpu']:.2f}",
            f"raw {min(f['cpu_us_per_msg'] for f in raw['flavours'].values())} us, agent "
            f"{burst['agent_cpu_us_per_msg']} us per message (CPU time: steadier than rates on "
            "a shared machine)",
        ),
        (
            "burst: all stored after",
            f"{summary['burst_seconds']} s",
            f"{summary['burst_sent']:,} sent in {burst['publish_seconds']} s "
            f"({burst['publish_msgs_per_s']:,} msgs/s), {summary['burst_stored']:,} stored, "
            f"{summary['burst_lost']:,} lost: {_ok(targets['burst_stored_all'])}",
        ),
    ]
    rows += _latency_rows(summary)
    rows += _cost_rows(summary)
    rows += _memory_rows(summary)
    drain = summary["drain"]
    rows.append(
        (
            "outage backlog written at",
            f"{summary['drain_points_per_s']:,} points/s",
            f"{summary['drain_backlog']:,} readings in {drain['drain_seconds']} s, "
            f"{drain['stored']:,} stored; first write {drain['resume_seconds']} s after the "
            f"server returned; ingest during the outage {drain['outage_ingest_msgs_per_s']:,} "
            "msgs/s",
        )
    )
    lines = _heading(summary) + _aligned(rows)
    lines += [
        "",
        f"CPU in % of one core ({summary['cpu_count']} cores: {100 * summary['cpu_count']}%); "
        "agent_loop is the agent's event loop thread (part of agent), others is what processes "
        "outside the bench used",
        *(
            f"  raw consumer drain, {LABELS[name]}: {_cpu(flavour['cpu_pct'])}"
            for name, flavour in raw["flavours"].items()
        ),
        f"  ingest: {_cpu(ingest['cpu_pct'])}",
        f"  burst: {_cpu(burst['cpu_pct'])}",
        *(
            f"  alert latency at {label}: {_cpu(level['cpu_pct'])}"
            for label, level in summary["alert_latency"].items()
        ),
        *(
            f"  cost at {rate} msgs/s: {_cpu(level['cpu_pct'])}"
            for rate, level in summary["cost"].items()
        ),
        f"  backlog drain: {_cpu(drain['cpu_pct'])}",
        f"run took {summary['seconds']} s",
    ]
    return "\n".join(lines)


def _latency_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    targets = summary["targets"]
    rows = []
    for label, level in summary["alert_latency"].items():
        load = (
            f"load {level['achieved_msgs_per_s']:,}/{level['load_msgs_per_s']:,} msgs/s"
            if level["load_msgs_per_s"]
            else "no load"
        )
        verdict = ""
        if label == "50%":
            verdict = f"; target < {P99_AT_HALF_MS:.0f} ms: {_ok(targets['alert_p99<50ms@50%'])}"
        elif label == "90%":
            verdict = f"; target < {P99_AT_90_MS:.0f} ms: {_ok(targets['alert_p99<1s@90%'])}"
        elif label == TELEMETRY_LEVEL:
            flag = targets["alert_p99<50ms@90%telemetry"]
            verdict = f"; target < {P99_BESIDE_TELEMETRY_MS:.0f} ms: {_ok(flag)}"
        rows.append(
            (
                f"alert latency p50 / p99 at {label}",
                f"{_ms(level['p50_ms'])} / {_ms(level['p99_ms'])}",
                f"{level['presses']} presses, {level['missing']} missing, max "
                f"{_ms(level['max_ms'])}, handled p50 / p99 {_ms(level['handled_p50_ms'])} / "
                f"{_ms(level['handled_p99_ms'])}, {load}{verdict}",
            )
        )
    return rows


def memory_table(summary: dict[str, Any]) -> str:
    """The table of `--only memory`."""
    lines = _heading(summary) + _aligned(_memory_rows(summary))
    return "\n".join([*lines, f"run took {summary['seconds']} s"])


def cost_keys(results: list[CostResult]) -> dict[str, Any]:
    """Per paced rate: the agent's CPU in % of a core and per message, and SOS latency."""
    by_rate = {str(round(r.rate)): r for r in results}
    at_500 = by_rate.get("500")
    return {
        "cpu_pct_at": {k: round(r.agent_pct, 1) for k, r in by_rate.items()},
        "cpu_us_per_msg_at": {k: round(r.us_per_message, 1) for k, r in by_rate.items()},
        "kb_written_per_msg_at": {
            k: round(r.kb_written_per_message, 2) for k, r in by_rate.items()
        },
        "cost_targets": {
            f"cpu<={CPU_TARGET_PCT:.0f}%@500": None
            if at_500 is None
            else at_500.agent_pct <= CPU_TARGET_PCT,
            f"sos_p99<{P99_AT_500_MS:.0f}ms@500": None
            if at_500 is None or at_500.latency.percentile(99) is None
            else (at_500.latency.percentile(99) or 0.0) < P99_AT_500_MS,
        },
        "cost": {
            k: {
                **_latency(r.latency),
                "cpu_us_per_msg": round(r.us_per_message, 1),
                "kb_written_per_msg": round(r.kb_written_per_message, 2),
                "disk_fsync_p50_ms": _round(r.disk_percentile(50)),
                "disk_fsync_p99_ms": _round(r.disk_percentile(99)),
                "per_s": r.per_s,
            }
            for k, r in by_rate.items()
        },
    }


def cost_summary(
    mode: str, machine: dict[str, Any], results: list[CostResult], seconds: float
) -> dict[str, Any]:
    """The JSON object of `--only cost`: the cost keys of `summarize`, nothing else."""
    return {
        "mode": mode,
        **machine,
        **cost_keys(results),
        "only": "cost",
        "seconds": round(seconds, 1),
    }


def cost_table(summary: dict[str, Any]) -> str:
    """The table of `--only cost`."""
    lines = _heading(summary) + _aligned(_cost_rows(summary))
    lines += [
        "",
        "CPU in % of one core:",
        *(
            f"  cost at {rate} msgs/s: {_cpu(level['cpu_pct'])}"
            for rate, level in summary["cost"].items()
        ),
        "The disk alone before each level (4 kB fdatasync'd every 10 ms for 2 s; an SOS's commit"
        " waits for one):",
        *(
            f"  before {rate} msgs/s: p50 {level.get('disk_fsync_p50_ms')} ms, "
            f"p99 {level.get('disk_fsync_p99_ms')} ms"
            for rate, level in summary["cost"].items()
        ),
        "What the cost follows, per second (outbox transactions per lane, writes per sink):",
        *(
            f"  at {rate} msgs/s: "
            + ", ".join(f"{name} {value:,.1f}" for name, value in level.get("per_s", {}).items())
            for rate, level in summary["cost"].items()
        ),
        f"run took {summary['seconds']} s",
    ]
    return "\n".join(lines)


def _cost_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    targets = summary.get("cost_targets") or summary["targets"]
    for rate, level in summary["cost"].items():
        verdict = ""
        if rate == "500":
            cpu_ok = targets[f"cpu<={CPU_TARGET_PCT:.0f}%@500"]
            p99_ok = targets[f"sos_p99<{P99_AT_500_MS:.0f}ms@500"]
            verdict = (
                f"; targets <= {CPU_TARGET_PCT:.0f}%: {_ok(cpu_ok)}, "
                f"p99 < {P99_AT_500_MS:.0f} ms: {_ok(p99_ok)}"
            )
        rows.append(
            (
                f"agent CPU at {int(rate):,} msgs/s (+{PRESSES_PER_S} SOS/s)",
                f"{level['cpu_pct']['agent']}% of a core",
                f"{level['cpu_us_per_msg']} us/msg, "
                f"{level.get('kb_written_per_msg', 0.0):.2f} kB written/msg; SOS p50 / p99 {_ms(level['p50_ms'])} / "
                f"{_ms(level['p99_ms'])} (handled {_ms(level['handled_p50_ms'])} / "
                f"{_ms(level['handled_p99_ms'])}), {level['missing']} missing; load "
                f"{level['achieved_msgs_per_s']:,} msgs/s{verdict}",
            )
        )
    return rows


def _memory_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for devices, memory in summary["memory"].items():
        verdict = ""
        if devices == str(RSS_TARGET_DEVICES):
            flag = summary["targets"]["rss<150MB@100k"]
            verdict = f"; target peak < {RSS_TARGET_MB:.0f} MB: {_ok(flag)}"
        rows.append(
            (
                f"agent RSS, {int(devices):,} registered devices",
                f"{memory['loaded_mb']} MB",
                f"idle {memory['idle_mb']} MB, peak {memory['peak_mb']} MB under "
                f"{memory['messages']:,} msgs{verdict}",
            )
        )
    return rows


def _heading(summary: dict[str, Any]) -> list[str]:
    return [
        f"community-edge bench ({summary['mode']}): {summary['cpu_count']} cores, load "
        f"{_load(summary['loadavg_before'])} before, {_load(summary['loadavg_after'])} after; "
        + "; ".join(f"{k}: {v}" for k, v in summary["versions"].items()),
        "",
    ]


def _aligned(rows: list[tuple[str, str, str]]) -> list[str]:
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    return [f"{a:<{width[0]}}  {b:>{width[1]}}  {c}" for a, b, c in rows]


def _load(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def _cpu(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}%" for k, v in values.items())
