"""`python -m bench [--quick] [--json-only] [--only memory|phones]`: the benchmarks, a table, one JSON line.

Phases, in order: raw consumers (paho over MQTT 3.1.1, over MQTT 5, and over MQTT 5 with the
agent's property parsing: the ingest ratio is taken against the fastest), agent ingest, burst,
alert latency (idle, 50 %, 90 % of the measured ingest rate), outage drain, memory with 10,000
and 100,000 registered devices.
`python -m bench console` measures the duty console instead (bench/console.py).
`--only memory` runs the memory phase alone (its keys only): RSS does not depend on the CPU the
other phases need, so it can be measured on a busy machine and repeated cheaply.
`--only latency` runs the alert latency phase alone: the agent's ingest rate (the loads are
shares of it), then SOS latency at idle, at each load share and beside telemetry-lane load.
`--only phones` runs the SMS and voice phase alone (bench/phones.py): SOS publish to the
provider's first request at idle and at 80 % of the measured ingest rate, and the requests per
alert in a flood of 1,000 SOS alarms.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from bench.cost import COST_RATES, CostResult, measure_cost
from bench.drain import DrainResult, measure_drain
from bench.ingest import measure_burst, measure_ingest
from bench.latency import (
    ALERT_COMMUNITY,
    AlertListener,
    LatencyPlan,
    LatencyResult,
    measure_latency,
)
from bench.machine import load_average, versions
from bench.memory import MemoryResult, measure_memory
from bench.phones import FULL_PHONES, QUICK_PHONES, run_phones
from bench.progress import Probe
from bench.publish import PublisherPool
from bench.raw import measure_raw
from bench.report import (
    TELEMETRY_LEVEL,
    Results,
    cost_summary,
    cost_table,
    latency_summary,
    latency_table,
    memory_summary,
    memory_table,
    summarize,
    table,
)
from bench.rig import Rig
from bench.traffic import TELEMETRY_MODEL, Traffic, min_span_s, roster

DEVICES = 2000  # the mixed community of the ingest, burst and load phases
OUTAGE_RATE = 1000.0  # msgs/s the drain backlog stands for


@dataclass(frozen=True)
class Plan:
    """Sizes of one run."""

    mode: str
    ingest_messages: int  # queued for the raw consumer, and again for the agent
    burst_messages: int
    latency: LatencyPlan
    load_shares: tuple[float, ...]  # background loads, shares of the measured ingest rate
    memory_devices: tuple[int, ...]
    memory_messages: int | None  # None: one message from every registered device
    drain_backlog: int
    poll_s: float  # /metrics polls while timing ingest and burst (each poll costs the agent)
    drain_poll_s: float
    cost_s: float  # seconds of each paced rate of the cost phase


FULL = Plan(
    mode="full",
    ingest_messages=200_000,
    burst_messages=200_000,
    latency=LatencyPlan(presses=200, interval_s=0.05, warmup_s=3.0, settle_s=10.0),
    load_shares=(0.5, 0.8, 0.9),  # 80 %: the load issue #5 asks alert latency at
    memory_devices=(10_000, 100_000),
    memory_messages=None,
    drain_backlog=600_000,  # 10 minutes at 1,000 msgs/s
    poll_s=0.2,
    drain_poll_s=0.5,
    cost_s=20.0,
)
QUICK = Plan(
    mode="quick",
    ingest_messages=20_000,
    burst_messages=20_000,
    latency=LatencyPlan(presses=25, interval_s=0.04, warmup_s=1.0, settle_s=5.0),
    load_shares=(0.5, 0.9),
    memory_devices=(10_000, 100_000),
    memory_messages=10_000,
    drain_backlog=30_000,  # 30 s at 1,000 msgs/s
    poll_s=0.1,
    drain_poll_s=0.1,
    cost_s=8.0,
)


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"


def _traffic(community: str, messages: int, span_s: float | None = None) -> Traffic:
    members = roster(DEVICES, community)
    span = span_s if span_s is not None else min_span_s(messages, DEVICES)
    return Traffic(community, members, messages, span, time.time())


def _memory(rig: Rig, pool: PublisherPool, plan: Plan) -> list[MemoryResult]:
    memory = []
    for devices in plan.memory_devices:
        messages = plan.memory_messages or devices
        _say(f"memory: {devices:,} registered devices, {messages:,} messages")
        memory.append(measure_memory(rig, pool, devices, messages))
        _say(f"memory: idle {memory[-1].idle_mb:.1f} MB, peak {memory[-1].peak_mb:.1f} MB")
    return memory


def _machine(
    rig: Rig, pool: PublisherPool, load_before: tuple[float, float, float]
) -> dict[str, object]:
    return {
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in load_average()],
        "publishers": pool.size,
        "versions": versions(rig.broker.binary, rig.tsdb.url),
    }


def run_memory(plan: Plan, publishers: int) -> dict[str, Any]:
    """The memory phase alone (`--only memory`): its keys of the JSON object."""
    started = time.monotonic()
    load_before = load_average()
    with Rig() as rig:
        pool = PublisherPool(rig.broker.host, rig.broker.port, publishers)
        try:
            memory = _memory(rig, pool, plan)
            machine = _machine(rig, pool, load_before)
        finally:
            pool.close()
    return memory_summary(plan.mode, machine, memory, time.monotonic() - started)


def _cost(rig: Rig, pool: PublisherPool, probe: Probe, plan: Plan) -> list[CostResult]:
    listener = AlertListener(probe.agent, ALERT_COMMUNITY)
    try:
        _say(f"cost: agent CPU at {', '.join(f'{r:,.0f}' for r in COST_RATES)} msgs/s")
        cost = measure_cost(
            rig, pool, probe, listener, ("bench-cost", roster(DEVICES, "bench-cost")), plan.cost_s
        )
    finally:
        listener.close()
    for each in cost:
        _say(
            f"cost at {each.rate:,.0f} msgs/s: agent {each.agent_pct:.1f}% of a core, "
            f"{each.us_per_message:.0f} us/msg, SOS p99 {_ms(each.latency.percentile(99))}"
        )
    return cost


def run_cost(plan: Plan, publishers: int) -> dict[str, Any]:
    """The cost phase alone (`--only cost`): a fresh agent, its keys of the JSON object."""
    started = time.monotonic()
    load_before = load_average()
    with Rig() as rig:
        pool = PublisherPool(rig.broker.host, rig.broker.port, publishers)
        try:
            agent = rig.agent("agent")
            agent.start()
            probe = Probe(agent)
            try:
                cost = _cost(rig, pool, probe, plan)
            finally:
                probe.close()
            machine = _machine(rig, pool, load_before)
        finally:
            pool.close()
    return cost_summary(plan.mode, machine, cost, time.monotonic() - started)


def _latency(
    rig: Rig, pool: PublisherPool, probe: Probe, plan: Plan, capacity: float
) -> list[LatencyResult]:
    """SOS latency at idle, at each share of `capacity` (msgs/s) of the mixed community, and
    beside the top share of telemetry-lane load."""
    latency = []
    listener = AlertListener(probe.agent, ALERT_COMMUNITY)
    try:
        mixed = ("bench-load", roster(DEVICES, "bench-load"))
        # the same top load from telemetry-lane devices: its own MQTT session, so the
        # question is whether the alarm lane waits behind it inside the agent
        telemetry = (
            "bench-telemetry",
            roster(DEVICES, "bench-telemetry", model=TELEMETRY_MODEL),
        )
        levels = [
            ("idle", 0.0, mixed),
            *((f"{s:.0%}", s, mixed) for s in plan.load_shares),
            (TELEMETRY_LEVEL, max(plan.load_shares), telemetry),
        ]
        for label, share, load in levels:
            rate = share * capacity
            _say(f"alert latency at {label} ({rate:,.0f} msgs/s of background load)")
            result = measure_latency(rig, pool, probe, listener, plan.latency, label, rate, load)
            _say(
                f"latency {label}: p50 {_ms(result.percentile(50))}, "
                f"p99 {_ms(result.percentile(99))}, {result.missing} missing"
            )
            latency.append(result)
    finally:
        listener.close()
    return latency


def run_latency(plan: Plan, publishers: int) -> dict[str, Any]:
    """The latency phase alone (`--only latency`): the agent's ingest rate first (the loads
    are shares of it), then SOS latency at each level; its keys of the JSON object."""
    started = time.monotonic()
    load_before = load_average()
    with Rig() as rig:
        pool = PublisherPool(rig.broker.host, rig.broker.port, publishers)
        try:
            _say(f"agent ingest: {plan.ingest_messages:,} messages queued, then drained")
            agent = rig.agent("agent")
            probe = Probe(agent)
            try:
                ingest = measure_ingest(
                    rig, pool, probe, _traffic("bench-ingest", plan.ingest_messages), plan.poll_s
                )
                _say(f"ingest: {ingest.rate:,.0f} msgs/s")
                latency = _latency(rig, pool, probe, plan, ingest.rate)
            finally:
                probe.close()
            machine = _machine(rig, pool, load_before)
        finally:
            pool.close()
    return latency_summary(plan.mode, machine, ingest, latency, time.monotonic() - started)


def run(plan: Plan, publishers: int) -> Results:
    started = time.monotonic()
    load_before = load_average()
    with Rig() as rig:
        pool = PublisherPool(rig.broker.host, rig.broker.port, publishers)
        try:
            _say(f"raw paho consumers: {plan.ingest_messages:,} messages queued for each, drained")
            raw = measure_raw(rig, pool, _traffic("bench-raw", plan.ingest_messages))
            for each in raw.results:
                _say(f"raw {each.flavour}: {each.rate:,.0f} msgs/s")

            _say(f"agent ingest: {plan.ingest_messages:,} messages queued, then drained")
            agent = rig.agent("agent")
            probe = Probe(agent)
            ingest = measure_ingest(
                rig, pool, probe, _traffic("bench-ingest", plan.ingest_messages), plan.poll_s
            )
            _say(f"ingest: {ingest.rate:,.0f} msgs/s, ratio {ingest.rate / raw.ceiling.rate:.2f}")

            _say(f"burst: {plan.burst_messages:,} messages as fast as possible")
            burst = measure_burst(
                rig, pool, probe, _traffic("bench-burst", plan.burst_messages), plan.poll_s
            )
            _say(f"burst: {burst.stored:,}/{burst.sent:,} stored after {burst.stored_s:.1f} s")

            latency = _latency(rig, pool, probe, plan, ingest.rate)

            cost = _cost(rig, pool, probe, plan)

            _say(f"drain: tsdb down, {plan.drain_backlog:,} messages backlog, tsdb back")
            drain: DrainResult = measure_drain(
                rig,
                pool,
                probe,
                _traffic("bench-drain", plan.drain_backlog, plan.drain_backlog / OUTAGE_RATE),
                poll_s=plan.drain_poll_s,
            )
            _say(f"drain: {drain.rate:,.0f} points/s")
            probe.close()
            rig.stop_agent(agent, forget=True)

            memory = _memory(rig, pool, plan)
            machine = _machine(rig, pool, load_before)
        finally:
            pool.close()
    return Results(
        mode=plan.mode,
        machine=machine,
        raw=raw,
        ingest=ingest,
        burst=burst,
        latency=latency,
        cost=cost,
        memory=memory,
        drain=drain,
        seconds=time.monotonic() - started,
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # clean up as after a Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["console"]:  # the duty console's figures, in chromium (bench/console.py)
        from bench import console

        return console.main(args_in[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="smaller runs, under a minute, the same keys"
    )
    parser.add_argument(
        "--json-only", action="store_true", help="print only the JSON line on stdout"
    )
    parser.add_argument(
        "--publishers",
        type=int,
        default=max(2, os.cpu_count() or 1),
        help="publisher processes (default: the core count, at least 2)",
    )
    parser.add_argument(
        "--only",
        choices=["memory", "cost", "latency", "phones"],
        help="run one phase alone and report only its keys (memory: 10,000 and 100,000 "
        "devices; cost: agent CPU per message at 500 and 4,000 msgs/s with SOS presses; "
        "latency: the agent's ingest rate, then SOS latency at idle, at shares of that rate "
        "and beside telemetry-lane load at the top share; "
        "phones: SMS and voice latency at idle and 80 %% load, a 1,000-alarm flood)",
    )
    args = parser.parse_args(argv)
    # Ctrl-C works even when started with SIGINT ignored (a background job of a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    plan = QUICK if args.quick else FULL
    try:
        if args.only == "phones":
            phones = run_phones(QUICK_PHONES if args.quick else FULL_PHONES, args.publishers)
            print(json.dumps(phones, ensure_ascii=False, indent=None), flush=True)
            return 0
        if args.only == "memory":
            summary = run_memory(plan, args.publishers)
        elif args.only == "cost":
            summary = run_cost(plan, args.publishers)
        elif args.only == "latency":
            summary = run_latency(plan, args.publishers)
        else:
            summary = summarize(run(plan, args.publishers))
    except KeyboardInterrupt:
        _say("interrupted: everything started is stopped")
        return 130
    if not args.json_only:
        shown = {"memory": memory_table, "cost": cost_table, "latency": latency_table}.get(
            args.only or "", table
        )
        print(shown(summary))
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
