"""The desk: what a front end (the alert API, the duty console) may read and do on a running agent.

One named surface instead of the agent's sub-objects: alerts and incidents (list, read, act),
silences, devices and their liveness, unregistered devices, dead letters, households (their
register, visits and away flag), the live stream of alert events, and health. Each call reaches the agent's current objects (the
registry is swapped on reload), so a desk may be built before the agent is entered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from edge.agent.assembly import Agent
from edge.alerts import AlertPage, Incident, Silence, SilenceSpec, Summary
from edge.enrich import (
    DeviceDetails,
    DeviceState,
    Household,
    HouseholdStore,
    Status,
    Unregistered,
    VisitStore,
    offline_rule,
)
from edge.model import Alert, AlertEvent, AlertStatus, DeadLetter, DeviceRef, Severity
from edge.rule_spec import RuleSpec
from edge.rules import RhythmView


class Desk:
    """The operations the alert API needs from the agent, and nothing else."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    def now(self) -> datetime:
        return self._agent.clock.now()

    # -- health --------------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        return await self._agent.health()

    async def readiness(self) -> list[str]:
        """What keeps the agent from being ready; empty when it is."""
        return await self._agent.readiness()

    # -- alerts and incidents ------------------------------------------------------------------

    def alerts(
        self,
        communities: list[str] | None,
        status: AlertStatus | None,
        severity: Severity | None,
        limit: int,
        cursor: str | None,
    ) -> AlertPage:
        """Stored alerts newest first (raises InvalidCursor for a cursor never issued)."""
        return self._agent.alert_store.list(
            communities=communities, status=status, severity=severity, limit=limit, cursor=cursor
        )

    def alert(self, alert_id: str) -> Alert | None:
        return self._agent.alert_store.get(alert_id)

    def history(self, alert_id: str) -> list[AlertEvent]:
        return self._agent.alert_store.history(alert_id)

    def open_alerts_of(self, device: DeviceRef) -> list[Alert]:
        return [
            a
            for a in self._agent.alerts.open_alerts()
            if a.device_id == device.device_id and a.community == device.community
        ]

    async def acknowledge(self, alert_id: str, actor: str, note: str | None) -> Alert:
        return await self._agent.acknowledge(alert_id, actor, note)

    async def resolve(self, alert_id: str, actor: str, note: str | None) -> Alert:
        return await self._agent.resolve(alert_id, actor, note)

    async def assign(self, alert_id: str, assignee: str, actor: str, note: str | None) -> Alert:
        return await self._agent.assign(alert_id, assignee, actor, note)

    def incidents(
        self, communities: list[str] | None, open_only: bool, min_alerts: int, limit: int
    ) -> list[Incident]:
        return self._agent.alert_store.incidents(
            communities=communities, open_only=open_only, min_alerts=min_alerts, limit=limit
        )

    def incident(self, incident_id: str) -> tuple[Incident, list[Alert]] | None:
        return self._agent.alert_store.incident(incident_id)

    async def act_on_incident(
        self, incident_id: str, action: str, actor: str, note: str | None
    ) -> Incident:
        return await self._agent.act_on_incident(incident_id, action, actor, note)

    def communities(self) -> list[str]:
        """Every community with a stored alert."""
        return self._agent.alert_store.communities()

    def summary(self, community: str, since: datetime, until: datetime) -> Summary:
        return self._agent.alert_store.summary(community, since, until)

    def subscription(self) -> AbstractContextManager[asyncio.Queue[AlertEvent | None]]:
        """Alert events as they are stored; None in the queue: cut off, or the agent stops."""
        return self._agent.stream.subscription()

    def alerts_version(self) -> int:
        """Alert events stored so far in this run (each is published once it is stored): while
        it stays the same, so do the stored alerts."""
        return self._agent.stream.published

    @property
    def stream_closed(self) -> bool:
        """The agent is stopping (a None in a subscription is then no overflow)."""
        return self._agent.stream.closed

    def rule(self, model: str, rule_id: str, device_id: str | None = None) -> RuleSpec | None:
        """The rule an alert names, as loaded now: the model's own (as overridden for the device
        when it is registered), its offline rule, or a community place rule; None if gone."""
        engine = self._agent.pipeline.rules
        found = next((r for r in engine.rules_for(model) if r.id == rule_id), None)
        if found is None and model in self._agent.profiles.names():
            offline = offline_rule(self._agent.profiles.get(model))
            found = offline if offline is not None and offline.id == rule_id else None
        if found is None:
            return next((r for r in engine.community.rules if r.id == rule_id), None)
        device = self._agent.registry.find(device_id) if device_id else None
        if device is not None and device.model == model:
            return engine.effective(found, device) or found  # disabled since: still its rule
        return found

    def heartbeat_of(self, model: str) -> int | None:
        """The longest silence before a device of `model` counts as offline (None: not checked)."""
        if model not in self._agent.profiles.names():
            return None
        return self._agent.profiles.get(model).heartbeat_seconds

    # -- silences ------------------------------------------------------------------------------

    def silences(self, current_at: datetime | None, limit: int) -> list[Silence]:
        return self._agent.alert_store.silences(current_at=current_at, limit=limit)

    def silence(self, silence_id: str) -> Silence | None:
        return self._agent.alert_store.silence(silence_id)

    def add_silence(self, spec: SilenceSpec, actor: str) -> Silence:
        return self._agent.add_silence(spec, actor)

    def expire_silence(self, silence_id: str, actor: str) -> Silence:
        return self._agent.expire_silence(silence_id, actor)

    # -- devices and places --------------------------------------------------------------------

    def devices(
        self,
        communities: set[str] | None,
        building: str | None,
        model: str | None,
        status: Status | None,
        start: int,
        limit: int,
    ) -> tuple[list[DeviceRef], int | None]:
        """Known devices from slot `start` on, filtered; and the slot the next page starts at."""
        registry = self._agent.registry
        health = self._agent.liveness
        found: list[DeviceRef] = []
        # a scan of plain comparisons: 100,000 devices in tens of milliseconds
        for slot in range(start, registry.slots):
            ref = registry.by_slot(slot)
            if (
                (communities is not None and ref.community not in communities)
                or (building is not None and ref.building != building)
                or (model is not None and ref.model != model)
                or (status is not None and health.status_of(ref) is not status)
            ):
                continue
            if len(found) == limit:
                return found, slot
            found.append(ref)
        return found, None

    def device(self, device_id: str) -> DeviceRef | None:
        return self._agent.registry.find(device_id)

    def device_details(self, device_id: str) -> DeviceDetails | None:
        """Install date, resident reference and contacts (kept on the gateway only)."""
        return self._agent.registry.details(device_id)

    def device_state(self, device: DeviceRef) -> DeviceState:
        return self._agent.liveness.state(device)

    def unregistered(self) -> Iterator[Unregistered]:
        return iter(self._agent.pipeline.unregistered.entries())

    def community_of_topic(self, topic: str) -> str | None:
        """The community a raw message's topic names, if its profile says where."""
        return self._agent.profiles.community_of(topic)

    async def dead_letters(self, limit: int, before_id: int | None) -> list[DeadLetter]:
        return await self._agent.outbox.dead_letters(limit=limit, before_id=before_id)

    async def set_away(
        self,
        community: str,
        building: str,
        unit: str,
        away: bool,
        until: datetime | None = None,
        reason: str | None = None,
    ) -> bool:
        """Mark a household away or back; whether it is away now.

        With `until`, a household in the register keeps the date and reason, and is brought back
        on that date (`AwayKeeper`, and the rules' own away flag ends on it too); without, the
        flag holds until someone clears it.
        """
        await self._agent.ticker.set_away(community, building, unit, away, until, reason)
        hid = f"{community}/{building}/{unit}"
        if self._agent.households.get(hid) is not None:
            self._agent.households.set_away(hid, until if away else None, reason, self.now())
        return self._agent.pipeline.rules.is_away(community, building, unit)

    async def households_changed(self) -> None:
        """The register was written: away dates take effect now, not at the next check."""
        await self._agent.away_keeper.check()

    def is_away(self, community: str, building: str, unit: str) -> bool:
        return self._agent.pipeline.rules.is_away(community, building, unit)

    @property
    def households(self) -> HouseholdStore:
        """The household register (residents, devices, family, care worker, away dates)."""
        return self._agent.households

    @property
    def visits(self) -> VisitStore:
        """Care workers' visits to households."""
        return self._agent.visits

    def household_alerts(self, household: Household) -> list[Alert]:
        """Open alerts of the household's devices and of the household itself (absence)."""
        devices = set(household.device_ids) | {f"household:{household.unit}"}
        return [
            a
            for a in self._agent.alerts.open_alerts()
            if a.community == household.community
            and a.device_id in devices
            and (a.building == household.building or not a.device_id.startswith("household:"))
        ]

    def away_of(
        self, community: str, building: str, unit: str
    ) -> tuple[bool, datetime | None, str | None]:
        """(away, until when, why) of a household."""
        return self._agent.pipeline.rules.away_of(community, building, unit)

    async def rhythm_of(self, community: str, building: str, unit: str) -> list[RhythmView]:
        """What the sign-of-life rules have learned of a household's day (async: under `run
        --shards N` another shard's rules may hold it)."""
        return self._agent.pipeline.rules.rhythm_of(community, building, unit, self.now())

    async def sign_of_life(self, community: str, building: str, unit: str) -> int:
        """Record a sign of life no sensor saw; how many absence alerts it resolved."""
        events = await self._agent.ticker.sign(community, building, unit)
        return sum(1 for e in events if e.kind == "resolved")
