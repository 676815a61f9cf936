"""Rule trace replay: timestamped messages through decode, registry, rules and alerts on a fake
clock, ticking between messages; what an installer runs before deploying a rule.

A trace is JSON lines: {"at": ISO 8601 or epoch ms, "topic": ..., "payload": {...}} (or
"payload_b64": "..." for raw bytes). Lines starting with `#` and blank lines are skipped.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from edge.agent.assembly import AgentConfig
from edge.agent.pipeline import Pipeline
from edge.alerts import AlertBook, EscalationPolicies, EscalationPolicy
from edge.clock import FakeClock
from edge.decode import ProfileRegistry
from edge.enrich import DeviceHealth, DeviceRegistry
from edge.errors import RuleError
from edge.model import AlertEvent, RawMessage
from edge.rules import CommunityRules, RuleEngine

TAIL_S = 300.0  # virtual seconds replayed after the last message: long enough for a hold or an escalation


@dataclass(frozen=True, slots=True)
class TraceMessage:
    at: datetime
    topic: str
    payload: bytes


@dataclass
class TraceResult:
    """Every alert event in order, and the messages that did not decode."""

    events: list[AlertEvent] = field(default_factory=list)
    messages: int = 0
    dead_letters: list[str] = field(default_factory=list)


def read_trace(path: Path) -> list[TraceMessage]:
    """Parse a trace file; raises RuleError naming the line of a bad entry."""
    out: list[TraceMessage] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entry = orjson.loads(line)
            at = entry["at"]
            when = (
                datetime.fromtimestamp(at / 1000, UTC)
                if isinstance(at, int | float)
                else datetime.fromisoformat(at).astimezone(UTC)
            )
            if "payload_b64" in entry:
                payload = base64.b64decode(entry["payload_b64"], validate=True)
            else:
                payload = orjson.dumps(entry["payload"])
            out.append(TraceMessage(when, str(entry["topic"]), payload))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RuleError(f"{path}:{number}: not a trace entry: {exc}") from exc
    return sorted(out, key=lambda m: m.at)  # stable: equal times keep file order


def replay(
    messages: Iterable[TraceMessage],
    profiles: ProfileRegistry,
    registry: DeviceRegistry,
    community: CommunityRules | None = None,
    *,
    tick_s: float = AgentConfig.rules_tick_s,  # as a gateway ticks
    tail_s: float = TAIL_S,
    policies: Sequence[EscalationPolicy] = (),
) -> TraceResult:
    """Replay on a fake clock: ticks every `tick_s` between messages and for `tail_s` after.

    With escalation `policies`, unacknowledged alerts escalate on the same clock (nobody
    acknowledges in a replay), so the events say whom each notification is for (`tier`).
    """
    messages = list(messages)
    result = TraceResult()
    if not messages:
        return result
    clock = FakeClock(messages[0].at)
    engine = RuleEngine(profiles, community)
    engine.watch(list(registry.devices()))
    alerts = AlertBook(clock, policies=EscalationPolicies(tuple(policies)))
    pipeline = Pipeline(profiles, registry, engine, alerts, DeviceHealth(clock, profiles))
    engine.tick(clock.now())  # watching starts with the trace

    def tick_until(until: datetime) -> None:
        for at in _steps(clock.now(), until, tick_s):
            clock.advance((at - clock.now()).total_seconds())
            for verdict in engine.tick(at):
                result.events.extend(alerts.apply_all(verdict))
            result.events.extend(alerts.escalate_due())

    for message in messages:
        tick_until(message.at)
        out = pipeline.handle(
            RawMessage(topic=message.topic, payload=message.payload, received_at=message.at)
        )
        result.messages += 1
        result.events.extend(out.events)
        if out.dead_letter is not None:
            result.dead_letters.append(
                f"{message.topic}: {out.dead_letter.cause}: {out.dead_letter.detail}"
            )
    tick_until(clock.now() + timedelta(seconds=tail_s))
    return result


def _steps(start: datetime, until: datetime, tick_s: float) -> Iterator[datetime]:
    step = timedelta(seconds=tick_s)
    at = start + step
    while at <= until:
        yield at
        at += step
    if until > start:
        yield until
