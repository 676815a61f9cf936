"""`python -m bench.rules`: rules evaluated per second per core, and the rules' share of the agent.

Two loops, both over decoded readings (decoding happens up front, outside the timing):

- `rules`: 10,000 devices, one of every example payload of the shipped profiles in turn, with the
  shipped community rules file; `RuleEngine.evaluate` in a tight loop with a tick every 1,000
  readings. A rule evaluation is one rule of the reading's model (plus each place rule watching it).
- `agent`: the bench's mixed community (`python -m bench`'s 2,000 devices and their routine
  traffic, resolved by an open-enrollment registry as the agent does) through what
  `Pipeline.handle` does after decoding: `RuleEngine.evaluate`, `DeviceHealth.seen` and the alert
  book's `apply_all` for each verdict. Each round starts from fresh state, so rounds are alike.

Times are the process's CPU time (best of the rounds), so a shared machine slows the figures less.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import orjson

from bench.traffic import Traffic, messages, min_span_s, roster
from edge.alerts import AlertBook
from edge.clock import SystemClock
from edge.decode import ProfileRegistry, decode, default_profile_dir
from edge.enrich import DeviceHealth, DeviceRegistry
from edge.model import DeviceRef, RawMessage, Reading
from edge.rules import CommunityRules, RuleEngine, Verdict, default_rules_file, load_rules_file

_T0 = datetime(2026, 11, 23, tzinfo=UTC)
AGENT_DEVICES = 2000  # bench.__main__.DEVICES: the mixed community of the ingest and burst


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


def community_readings(
    profiles: ProfileRegistry, count: int, devices: int = AGENT_DEVICES
) -> tuple[list[Reading], DeviceRegistry]:
    """`count` readings of the bench's mixed community, decoded and resolved as the agent does."""
    members = roster(devices, "bench-rules")
    traffic = Traffic("bench-rules", members, count, min_span_s(count, devices), _T0.timestamp())
    registry = DeviceRegistry()  # open enrollment, as the bench's agent runs
    out = []
    for topic, payload in messages(traffic, 0, 1):
        decoded = decode(RawMessage(topic=topic, payload=payload, received_at=_T0), profiles)
        device = registry.resolve(decoded.profile, decoded.device_id, decoded.topic_values)
        out.append(
            Reading.trusted(
                device,
                decoded.fields,
                decoded.at,
                _T0,
                decoded.time_source,
                decoded.seq,
                decoded.flags,
            )
        )
    return out, registry


def agent_loop(
    readings: list[Reading], engine: RuleEngine, health: DeviceHealth, alerts: AlertBook
) -> int:
    """What `Pipeline.handle` does with a reading after decoding; the alert events made."""
    events = 0
    for reading in readings:
        verdicts = engine.evaluate(reading)
        change = health.seen(reading.device, reading.fields)
        if change is not None:
            offline = health.rule_for(reading.device.model)
            if offline is not None:
                verdicts.append(
                    Verdict(offline, "clear" if change == "online" else "raise", reading)
                )
        for verdict in verdicts:
            events += len(alerts.apply_all(verdict))
    return events


def _rules(profiles: ProfileRegistry, community: CommunityRules, devices: int, rounds: int) -> None:
    readings = _readings(profiles, devices)
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
    for round_ in range(rounds):
        start = time.process_time()
        for i, reading in enumerate(readings):
            engine.evaluate(reading)
            if i % 1000 == 999:
                engine.tick(_T0 + timedelta(seconds=round_ * 20 + i / 1000))
        best = min(best, time.process_time() - start)
    print(f"devices {devices:,}, readings {len(readings):,}, rule evaluations {evaluations:,}")
    print(f"readings evaluated per second per core: {len(readings) / best:,.0f}")
    print(f"rules evaluated per second per core:    {evaluations / best:,.0f}")
    print(f"cost per reading: {best / len(readings) * 1e6:.2f} µs")


def _agent(profiles: ProfileRegistry, community: CommunityRules, count: int, rounds: int) -> None:
    readings, registry = community_readings(profiles, count)
    clock = SystemClock()
    best = float("inf")
    events = 0
    for _ in range(rounds):
        engine = RuleEngine(profiles, community)
        engine.watch(list(registry.devices()))
        health = DeviceHealth(clock, profiles)
        health.reserve(registry.slots)
        alerts = AlertBook(clock)
        start = time.process_time()
        events = agent_loop(readings, engine, health, alerts)
        best = min(best, time.process_time() - start)
    print(
        f"mixed community: {registry.slots:,} devices, {len(readings):,} readings, "
        f"{events:,} alert events a round"
    )
    print(f"rules + device health + alert book per reading: {best / len(readings) * 1e6:.2f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rules")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=40_000, help="the agent loop's readings")
    parser.add_argument("--only", choices=("rules", "agent"), default=None)
    args = parser.parse_args()
    profiles = ProfileRegistry.load(default_profile_dir())
    community = load_rules_file(default_rules_file(), profiles)
    if args.only != "agent":
        _rules(profiles, community, args.devices, args.rounds)
    if args.only != "rules":
        _agent(profiles, community, args.messages, args.rounds)


if __name__ == "__main__":
    main()
