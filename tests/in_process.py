"""An agent fed in process: one message through its pipeline, committed and delivered to every
sink as an ingest lane does it, without a broker (for tests of the API and the console)."""

from __future__ import annotations

from edge.agent import Agent
from edge.agent.pipeline import Output
from edge.model import RawMessage


async def handle_and_deliver(agent: Agent, raw: RawMessage) -> Output:
    """`raw` handled, what it produced committed to the outbox, then every forwarder drained."""
    out = agent.pipeline.handle(raw)
    await agent.outbox.commit(
        [out.reading] if out.reading is not None else [],
        out.events,
        [out.dead_letter] if out.dead_letter is not None else [],
    )
    for forwarder in agent.forwarders:
        await forwarder.drain()
    return out
