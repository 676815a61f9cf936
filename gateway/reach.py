"""Whether an escalation step reaches anyone through the gateway's channels (`edge.alerts.Reach`),
and whether a queued message is still wanted (`Channel(handled=...)`), answered from the agent.

A step is unreached when no routed channel takes its event (routes, kinds, tiers), or when every
channel that takes it is failing right now (its last attempt failed). The generic `webhooks:`
are a platform's feed of every transition, not a way to reach a person: they do not count.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge.agent import Agent, Desk
from edge.model import Alert, AlertEvent
from edge.sinks import Channel
from gateway.console.summaries import said_by


class ChannelReach:
    """Answers for the routed channels of one gateway; `agent` is set once it is built."""

    def __init__(self, channels: Sequence[Channel] = ()) -> None:
        self.channels: list[Channel] = []
        self.agent: Agent | None = None
        self.use(channels)

    def use(self, channels: Sequence[Channel]) -> None:
        """The channels to answer for (built after this object, which they ask about alerts)."""
        self.channels = [c for c in channels if c.route is not None]

    @property
    def console_only(self) -> bool:
        return not self.channels

    def unreached(self, event: AlertEvent) -> str | None:
        if not self.channels:
            return "no notification channel is configured (channels:): the console only"
        taking: list[Channel] = []
        refused: list[str] = []
        for channel in self.channels:
            reason = channel.refusal(event)
            if reason is None:
                taking.append(channel)
            else:
                refused.append(f"{channel.name}: {reason}")
        if not taking:
            return "no channel takes it (" + "; ".join(refused[:4]) + ")"
        failing = [c for c in taking if c.failing is not None]
        if len(failing) == len(taking):
            detail = "; ".join(f"{c.name}: {c.failing}" for c in failing[:3])
            return f"every channel that takes it is failing ({detail})"
        return None

    def handled(self, event: AlertEvent) -> str | None:
        """Who has taken the event's alert (or its incident) since; None while nobody has."""
        if self.agent is None:
            return None
        try:
            alerts = self.agent.alerts
        except AttributeError:  # the agent is not started yet
            return None
        return alerts.handled(event.alert.id)

    def chinese(self, alert: Alert) -> str:
        """The alert's summary as its rule says it in Chinese (as stored before the agent is
        built, or when the rule has no Chinese line), for the messages people read."""
        if self.agent is None:
            return alert.summary
        return said_by(Desk(self.agent))(alert)  # the rules as loaded now: they may be reloaded
