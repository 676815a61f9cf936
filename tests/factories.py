"""Small builders of domain values for pure unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

from edge.agent import Agent
from edge.clock import FakeClock
from edge.model import Alert, AlertEvent, AlertEventKind, AlertStatus, RawMessage, Severity

AT = datetime(2026, 11, 23, tzinfo=UTC)


def opened_event(i: int, rule: str = "smoke", category: str = "smoke") -> AlertEvent:
    """The `opened` event of a critical alert of device `d<i>`, ids `a<i>` and `e<i>`."""
    alert = Alert(
        id=f"a{i}",
        key=f"{rule}|d{i}",
        rule=rule,
        summary=rule.capitalize(),
        severity=Severity.CRITICAL,
        status=AlertStatus.ACTIVE,
        device_id=f"d{i}",
        model="m",
        category=category,
        community="c1",
        building="b1",
        opened_at=AT,
        updated_at=AT,
        last_seen_at=AT,
    )
    return AlertEvent(id=f"e{i}", kind=AlertEventKind.OPENED, at=AT, actor="rule", alert=alert)


async def press_sos(agent: Agent, clock: FakeClock, topic: str) -> list[AlertEvent]:
    """One SOS press through the pipeline, committed and delivered as ingest does it, a second
    after the last (so newest-first order is well defined)."""
    clock.advance(1)
    payload = b'{"action": "emergency", "battery": 80}'
    out = agent.pipeline.handle(RawMessage(topic=topic, payload=payload, received_at=clock.now()))
    await agent.outbox.commit([out.reading] if out.reading else [], out.events)
    for forwarder in agent.forwarders:
        await forwarder.drain()
    return out.events
