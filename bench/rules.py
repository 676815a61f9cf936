"""`python -m bench.rules`: rules evaluated per second per core, 10,000 devices, default rules.

A mixed community (the shipped profiles, every example payload decoded once up front) with the
shipped community rules file; readings are evaluated in a tight loop with a tick every 1,000
readings. A rule evaluation is one rule of the reading's model (plus each place rule watching it).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import orjson

from edge.decode import ProfileRegistry, decode, default_profile_dir
from edge.model import DeviceRef, RawMessage, Reading
from edge.rules import RuleEngine, default_rules_file, load_rules_file

_T0 = datetime(2026, 11, 23, tzinfo=UTC)


def _readings(profiles: ProfileRegistry, devices: int) -> list[Reading]:
    samples = []
    for profile in profiles:
        for example in profile.examples:
            raw = RawMessage(
                topic=example.topic, payload=orjson.dumps(example.payload), received_at=_T0
            )
            samples.append((profile, decode(raw, profiles).fields))
    out = []
    for n in range(devices):
        profile, fields = samples[n % len(samples)]
        device = DeviceRef(
            f"d{n}", profile.name, profile.category, "bench", f"b{n % 40}", f"u{n % 2500}", slot=n
        )
        out.append(
            Reading.model_construct(
                device=device,
                fields=fields,
                at=_T0 + timedelta(milliseconds=n),
                received_at=_T0,
                time_source="gateway",
                seq=None,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rules")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    profiles = ProfileRegistry.load(default_profile_dir())
    community = load_rules_file(default_rules_file(), profiles)
    readings = _readings(profiles, args.devices)
    engine = RuleEngine(profiles, community)
    per_reading = {
        r.device.model: len([x for x in engine.rules_for(r.device.model) if x.kind != "offline"])
        for r in readings
    }
    places = engine.places
    evaluations = sum(
        per_reading[r.device.model]
        + len(places.by_category.get(r.device.category, ()))
        + len(places.by_model.get(r.device.model, ()))
        for r in readings
    )
    best = float("inf")
    for round_ in range(args.rounds):
        start = time.perf_counter()
        for i, reading in enumerate(readings):
            engine.evaluate(reading)
            if i % 1000 == 999:
                engine.tick(_T0 + timedelta(seconds=round_ * 20 + i / 1000))
        best = min(best, time.perf_counter() - start)
    print(f"devices {args.devices:,}, readings {len(readings):,}, rule evaluations {evaluations:,}")
    print(f"readings evaluated per second per core: {len(readings) / best:,.0f}")
    print(f"rules evaluated per second per core:    {evaluations / best:,.0f}")
    print(f"cost per reading: {best / len(readings) * 1e6:.2f} µs")


if __name__ == "__main__":
    main()
