"""Alerts: the lifecycle (AlertBook), incidents, escalation policies, silences, flapping, the
alert store and its live stream.
"""

from edge.alerts.escalation import EscalationPolicies, EscalationPolicy, EscalationStep
from edge.alerts.flapping import FLAP_TRANSITIONS, FLAP_WINDOW_S, FlapDetector
from edge.alerts.incidents import INCIDENT_WINDOW_S, Incident
from edge.alerts.lifecycle import AlertBook, alert_key
from edge.alerts.reach import Reach, Target, Unreached
from edge.alerts.roster import OnDuty, Person, Roster, RosterFile
from edge.alerts.silences import Silence, SilenceBook, SilenceSpec, new_silence
from edge.alerts.store import (
    AlertPage,
    AlertStore,
    AlertStoreSink,
    InvalidCursor,
    Summary,
    decode_cursor,
    encode_cursor,
)
from edge.alerts.stream import AlertStream

__all__ = [
    "FLAP_TRANSITIONS",
    "FLAP_WINDOW_S",
    "INCIDENT_WINDOW_S",
    "AlertBook",
    "AlertPage",
    "AlertStore",
    "AlertStoreSink",
    "AlertStream",
    "EscalationPolicies",
    "EscalationPolicy",
    "EscalationStep",
    "FlapDetector",
    "Incident",
    "InvalidCursor",
    "OnDuty",
    "Person",
    "Reach",
    "Roster",
    "RosterFile",
    "Silence",
    "SilenceBook",
    "SilenceSpec",
    "Summary",
    "Target",
    "Unreached",
    "alert_key",
    "decode_cursor",
    "encode_cursor",
    "new_silence",
]
