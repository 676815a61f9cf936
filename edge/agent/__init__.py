"""The agent: assembles the stages (ingest -> decode -> enrich -> rules -> alerts -> outbox ->
sinks), owns their tasks, and replays traces through them.
"""

from edge.agent.assembly import Agent, AgentConfig
from edge.agent.desk import Desk
from edge.agent.trace import TAIL_S, read_trace, replay

__all__ = [
    "TAIL_S",
    "Agent",
    "AgentConfig",
    "Desk",
    "read_trace",
    "replay",
]
