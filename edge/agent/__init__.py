"""The agent: assembles the stages (ingest -> decode -> enrich -> rules -> alerts -> outbox ->
sinks), owns their tasks, and replays traces through them.
"""

from edge.agent.assembly import Agent, AgentConfig
from edge.agent.desk import Desk
from edge.agent.family_caller import (
    FAMILY_TIER,
    FamilyCaller,
    family_person_id,
    parse_family_person_id,
)
from edge.agent.pipeline import Pipeline
from edge.agent.trace import TAIL_S, read_trace, replay

__all__ = [
    "FAMILY_TIER",
    "TAIL_S",
    "Agent",
    "AgentConfig",
    "Desk",
    "FamilyCaller",
    "Pipeline",
    "family_person_id",
    "parse_family_person_id",
    "read_trace",
    "replay",
]
