"""Rules: the engine that turns readings into verdicts, place rules (households, correlation),
the community rules file, rule state on disk.
"""

from edge.rules.community import CommunityRules, default_rules_file, load_rules_file
from edge.rules.engine import RuleEngine
from edge.rules.place import correlation_summary
from edge.rules.rhythm import Day, HouseholdRhythm, RhythmView
from edge.rules.state import RuleStateStore
from edge.rules.verdict import Verdict

__all__ = [
    "CommunityRules",
    "Day",
    "HouseholdRhythm",
    "RhythmView",
    "RuleEngine",
    "RuleStateStore",
    "Verdict",
    "correlation_summary",
    "default_rules_file",
    "load_rules_file",
]
