"""`python -m bench.pipeline`: the agent's pipeline CPU cost per message, in microseconds.

The pipeline is built as `edge/agent/assembly.py` builds it (shipped profiles, the shipped
community rules with their state store, an alert book, device liveness), with a device registry
of the bench's mixed community (2,000 devices, `bench.traffic.roster`). It handles N pre-built
RawMessages of that community's traffic in a tight loop: no broker, no outbox, no event loop.
Each of five rounds gets a fresh pipeline (sequence numbers, repeats and alerts start over, so
every round does the same work); the figure is the best round's CPU time (`process_time`) per
message, in total and for `decode` alone over the same messages.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from bench.traffic import Traffic, messages, min_span_s, registry_csv, roster
from edge.agent import Pipeline
from edge.alerts import AlertBook
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, decode, default_profile_dir
from edge.enrich import DeviceHealth, DeviceRegistry
from edge.model import RawMessage
from edge.rules import RuleEngine, RuleStateStore, default_rules_file, load_rules_file

DEVICES = 2000  # as bench/__main__.py's mixed community
COMMUNITY = "bench-pipeline"
_END = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # the traffic's last device time


def _raws(count: int) -> tuple[list[str], list[RawMessage]]:
    """The registry file's rows and `count` messages of the mixed community, received just after
    their device time (so every device time is sane, as in a live burst)."""
    members = roster(DEVICES, COMMUNITY)
    traffic = Traffic(COMMUNITY, members, count, min_span_s(count, DEVICES), _END.timestamp())
    raws = []
    for number, (topic, payload) in enumerate(messages(traffic, 0, 1)):
        at = _END - timedelta(seconds=traffic.span_s * (1.0 - number / count))
        raws.append(RawMessage(topic, payload, at + timedelta(milliseconds=20)))
    return registry_csv(members, COMMUNITY).splitlines(), raws


def _pipeline(data: Path, profiles: ProfileRegistry, registry_rows: list[str]) -> Pipeline:
    """A fresh pipeline over its own state files in `data`, as the agent assembles one."""
    data.mkdir()
    devices = data / "devices.csv"
    devices.write_text("\n".join(registry_rows) + "\n", encoding="utf-8")
    registry = DeviceRegistry.from_file(devices, profiles)
    clock = FakeClock(_END)
    health = DeviceHealth(clock, profiles)
    health.reserve(registry.slots)
    community = load_rules_file(default_rules_file(), profiles)
    return Pipeline(
        profiles,
        registry,
        RuleEngine(profiles, community, RuleStateStore(data / "rules.db")),
        AlertBook(clock),
        health,
    )


def _cpu_us(run: Callable[[], object], count: int) -> float:
    start = time.process_time()
    run()
    return (time.process_time() - start) / count * 1e6


def _handle_all(pipeline: Pipeline, raws: list[RawMessage]) -> None:
    handle = pipeline.handle
    for raw in raws:
        handle(raw)


def _decode_all(profiles: ProfileRegistry, raws: list[RawMessage]) -> None:
    for raw in raws:
        decode(raw, profiles)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    profiles = ProfileRegistry.load(default_profile_dir())
    rows, raws = _raws(args.messages)
    count = len(raws)
    totals, decodes = [], []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        for round_ in range(args.rounds):
            pipeline = _pipeline(Path(tmp) / f"round-{round_}", profiles, rows)
            totals.append(_cpu_us(partial(_handle_all, pipeline, raws), count))
            decodes.append(_cpu_us(partial(_decode_all, profiles, raws), count))
            if pipeline.rules.store is not None:
                pipeline.rules.store.close()
    if pipeline.dead_letters_by_cause:  # every device is registered: a dead letter is a bug
        raise SystemExit(f"dead letters: {dict(pipeline.dead_letters_by_cause)}")
    total, decoded = min(totals), min(decodes)
    print(
        f"devices {DEVICES:,}, messages {count:,}, readings {pipeline.readings:,}, "
        f"open alerts {len(pipeline.alerts)}, best of {args.rounds} (CPU time)"
    )
    print(f"pipeline µs/msg: {total:7.2f}")
    print(f"  decode alone:  {decoded:7.2f}")
    print(f"  the rest:      {total - decoded:7.2f}")


if __name__ == "__main__":
    main()
