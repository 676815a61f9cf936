"""`python -m bench --only phones`: rules of reach and speed of the SMS and voice channels.

One `community-edge run` (the bench's broker and VictoriaMetrics) with an Alibaba SMS and a
Tencent voice channel pointed at the local provider receivers of the tests
(`tests/phone_receivers.py`, which check signatures and templates as the providers do):

- capacity: the agent's ingest rate, measured as in the ingest phase (queued, then drained);
- latency: SOS presses, each from its own button, one at a time, from just before `publish()` to
  the SMS and the call request arriving at their receivers, at idle and under a paced telemetry
  load at 80 % of that capacity (the per-person limit is raised for this agent: every press is
  meant to ring);
- flood: a second agent with the default rules of reach (5 per person and channel in 10 minutes)
  takes 1,000 SOS alarms at once; the SMS and call requests per alert are counted once every
  opened event is decided.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.ingest import measure_ingest
from bench.progress import Probe
from bench.publish import PublisherPool
from bench.rig import BenchError, Rig, wait_until
from bench.traffic import Traffic, min_span_s, roster
from tests.agent_process import AgentProcess
from tests.mqtt_publisher import Publisher
from tests.phone_agent import channel_yaml
from tests.phone_receivers import ALIYUN_SECRET, ProviderReceiver

DEVICES = 2000
LOAD_SHARE = 0.8
PRESS = {"action": "emergency", "battery": 80}
FLOOD = 1000
DEFAULT_LIMIT = 5


@dataclass(frozen=True)
class PhonePlan:
    ingest_messages: int
    presses: int
    warmup_s: float


FULL_PHONES = PhonePlan(ingest_messages=100_000, presses=100, warmup_s=3.0)
QUICK_PHONES = PhonePlan(ingest_messages=20_000, presses=30, warmup_s=1.0)


def _configure(rig: Rig, name: str, sms: ProviderReceiver, voice: ProviderReceiver,
               limit: int | None) -> AgentProcess:  # fmt: skip
    agent = rig.agent(name)
    secret = rig.root / "aliyun-secret"
    secret.write_text(ALIYUN_SECRET + "\n", encoding="utf-8")
    extra = f", per_person_limit: {limit}" if limit else ""
    config = (
        f"notifications: {{public_url: '{agent.url}'{extra}}}\n"
        "channels:\n" + channel_yaml(sms, "sms") + channel_yaml(voice, "call")
    ).replace("{dir}", str(rig.root))
    path: Path = rig.root / f"{name}.yaml"
    path.write_text(config, encoding="utf-8")
    agent.extra_args = [*agent.extra_args, "--config", str(path)]
    return agent


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    if not ordered:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None, "n": 0}
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "n": len(ordered),
    }


def _presses(
    rig: Rig, sms: ProviderReceiver, voice: ProviderReceiver, label: str, presses: int
) -> dict[str, Any]:
    took: dict[str, list[float]] = {"sms": [], "voice": []}
    with Publisher(rig.broker.url) as publisher:
        for n in range(presses):
            counts = (len(sms.accepted), len(voice.accepted))
            start = time.monotonic()
            publisher.publish(f"ce/bench-phones/b1/tuya-sos-button/sos-{label}-{n:04d}", PRESS)
            for medium, receiver, before in (("sms", sms, counts[0]), ("voice", voice, counts[1])):
                wait_until(
                    lambda r=receiver, b=before: len(r.accepted) > b,  # type: ignore[misc]
                    30.0,
                    f"{medium} request for press {n} at {label}",
                )
                took[medium].append(receiver.accepted[before].at - start)
    return {medium: _percentiles(values) for medium, values in took.items()}


def _flood(rig: Rig, pool: PublisherPool) -> dict[str, Any]:
    with ProviderReceiver("aliyun", "sms") as sms, ProviderReceiver("tencent", "voice") as voice:
        agent = _configure(rig, "phones-flood", sms, voice, None)
        agent.start()
        try:
            started = time.monotonic()
            with Publisher(rig.broker.url, max_inflight=1000) as publisher:
                publisher.publish_many(
                    (f"ce/bench-flood/b{i % 10}/tuya-sos-button/sos-{i}", PRESS)
                    for i in range(FLOOD)
                )

            def decided() -> bool:
                metrics = agent.metrics()
                return all(
                    metrics.get(f'community_edge_channel_skipped_total{{sink="{s}"}}', 0)
                    >= FLOOD - DEFAULT_LIMIT
                    for s in ("sms", "call")
                )

            wait_until(decided, 300.0, "every opened event of the flood decided")
            took = time.monotonic() - started
            wait_until(
                lambda: all(
                    any("条告警未处理" in r.fields["summary"] for r in receiver.accepted)
                    for receiver in (sms, voice)
                ),
                30.0,
                "the flood's summary SMS and call",
            )
            out: dict[str, Any] = {"alerts": FLOOD, "decided_s": round(took, 1)}
            for medium, receiver in (("sms", sms), ("voice", voice)):
                summaries = sum("条告警未处理" in r.fields["summary"] for r in receiver.accepted)
                out[medium] = {
                    "requests": len(receiver.accepted),
                    "summaries": summaries,
                    "per_alert": round(len(receiver.accepted) / FLOOD, 4),
                }
            return out
        finally:
            rig.stop_agent(agent, forget=True)


def run_phones(plan: PhonePlan, publishers: int) -> dict[str, Any]:
    """The phone phase alone: capacity, latency at idle and at 80 %, the flood."""
    started = time.monotonic()
    with Rig() as rig:
        pool = PublisherPool(rig.broker.host, rig.broker.port, publishers)
        try:
            with (
                ProviderReceiver("aliyun", "sms") as sms,
                ProviderReceiver("tencent", "voice") as voice,
            ):
                agent = _configure(rig, "phones", sms, voice, 1_000_000)
                probe = Probe(agent)
                members = roster(DEVICES, "bench-ingest")
                traffic = Traffic(
                    "bench-ingest",
                    members,
                    plan.ingest_messages,
                    min_span_s(plan.ingest_messages, DEVICES),
                    time.time(),
                )
                ingest = measure_ingest(rig, pool, probe, traffic)
                capacity = ingest.rate
                latency = {"idle": _presses(rig, sms, voice, "idle", plan.presses)}
                rate = LOAD_SHARE * capacity
                duration = plan.warmup_s + plan.presses * 0.5 + 30.0
                load = Traffic(
                    "bench-load",
                    roster(DEVICES, "bench-load"),
                    int(rate * duration),
                    duration,
                    time.time() + duration,
                )
                base = probe.counts()
                pool.prepare(load, rate)
                pool.go()
                try:
                    time.sleep(plan.warmup_s)
                    latency["80%"] = _presses(rig, sms, voice, "load", plan.presses)
                finally:
                    loaded = pool.stop()
                if loaded.failed:
                    raise BenchError(f"phones load: {loaded.failed} messages refused")
                sent = loaded.sent + plan.presses
                probe.follow("acked", base.acked + sent, within_s=max(60.0, sent / 500))
                probe.close()
                rig.stop_agent(agent, forget=True)
            flood = _flood(rig, pool)
        finally:
            pool.close()
    return {
        "phones": {
            "capacity_msgs_s": round(capacity),
            "load_msgs_s": round(rate),
            "load_sent": loaded.sent,
            "latency": latency,
            "flood": flood,
            "seconds": round(time.monotonic() - started),
        }
    }
