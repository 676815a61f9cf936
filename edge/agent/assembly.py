"""The agent: one MQTT session, the pipeline, the outbox and a forwarder per sink, in one TaskGroup.

A message is acknowledged to the broker only after its reading, alert events or dead letter are
committed to the outbox. Commits are batched: whatever arrived while the previous commit was on
its way to disk goes into the next one.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from edge.agent.away_keeper import AwayKeeper
from edge.agent.care_watch import CareWatch
from edge.agent.escalator import Escalator
from edge.agent.family_caller import FamilyCaller
from edge.agent.liveness_monitor import LivenessMonitor
from edge.agent.pipeline import Pipeline
from edge.agent.rule_ticker import RuleTicker
from edge.alerts import (
    FLAP_TRANSITIONS,
    FLAP_WINDOW_S,
    INCIDENT_WINDOW_S,
    AlertBook,
    AlertStore,
    AlertStoreSink,
    AlertStream,
    EscalationPolicies,
    EscalationPolicy,
    FlapDetector,
    Incident,
    Reach,
    Roster,
    Silence,
    SilenceBook,
    SilenceSpec,
    new_silence,
)
from edge.clock import Clock
from edge.decode import ProfileRegistry
from edge.enrich import (
    DeviceHealth,
    DeviceRegistry,
    HouseholdStore,
    RegistryFile,
    Shard,
    ShardFilter,
    VisitStore,
    owned_registry,
)
from edge.errors import (
    AlertNotFound,
    AlertTransitionError,
    IncidentNotFound,
    SilenceNotFound,
    SinkUnavailable,
)
from edge.ingest import (
    KEEPALIVE_S,
    RECEIVE_MAXIMUM,
    BrokerAddress,
    Delivery,
    IngestLane,
    MqttProtocol,
    MqttSession,
    SessionStatus,
)
from edge.model import Alert, AlertEvent, AlertStatus, DeviceRef
from edge.outbox import OUTBOX_MAX_BYTES, Forwarder, Outbox, Sink, check_sink_names
from edge.rules import CommunityRules, RuleEngine, RuleStateStore
from edge.sinks import ReadingStore

_log = logging.getLogger(__name__)
# how long entries a sink refused (set aside) keep /healthz degraded
SET_ASIDE_DEGRADES_S = 24 * 3600
UNREACHED_DEGRADES_S = 3600  # /healthz is degraded this long after a step reached nobody


def _restart_note(status: SessionStatus) -> str | None:
    """What /healthz says about the broker's last restart under a session it gave back."""
    at = status.last_broker_restart
    if at is None:
        return None
    return (
        f"the broker restarted at {at:%Y-%m-%d %H:%M:%S} UTC and gave back this session from its "
        "last save: messages devices published after that save (up to autosave_interval seconds "
        "of them) are lost; devices with sequence numbers show them as sequence gaps"
    )


def _store_problem(sink: Sink) -> str | None:
    """What a sink found wrong with its store's configuration (InfluxSink: VictoriaMetrics
    without deduplication); the Sink protocol does not require sinks to look."""
    problem = getattr(sink, "store_problem", None)
    return problem if isinstance(problem, str) else None


@dataclass(frozen=True)
class AgentConfig:
    """Plain values the agent needs; the gateway builds it from its settings.

    Each default here is written once: the gateway's settings take theirs from these fields
    (`AgentConfig.liveness_check_s`, ...), and the ingest and outbox constants are their stages'.
    """

    broker: BrokerAddress
    client_id: str
    data_dir: Path
    receive_maximum: int = RECEIVE_MAXIMUM  # unacknowledged messages the broker may send us
    mqtt_protocol: MqttProtocol = "5"
    keepalive_s: int = KEEPALIVE_S  # MQTT keep-alive of each session
    batch_max: int = 1000  # telemetry messages per outbox transaction at most
    alarm_batch_max: int = 500  # alarm messages per transaction at most
    # how long a small telemetry batch may wait for more before its commit (alarms never wait)
    # (50 ms: at 500 msgs/s a commit per ~25 messages, not per 10; an fsync'd transaction and
    # a thread hop each)
    telemetry_linger_s: float = 0.05
    # the same for the routine messages of alarm-class devices (heartbeats, batteries, access
    # events: most of a community's traffic); a message that raises or clears an alert ends the
    # wait at once, so an SOS never waits
    alarm_linger_s: float = 0.05
    # MQTT packets of the telemetry session parsed per turn of the event loop: each turn of a
    # flood then costs an SOS a few ms, not the 500 packets (20-30 ms) the alarm session reads
    telemetry_reads_per_wakeup: int = 64
    alarm_reads_per_wakeup: int = 500  # the alarm session's own burst is read in one go
    # how long readings may gather before a sink of readings (the time-series store, for
    # dashboards) writes them; a sink of alert events alone never waits. Each round costs two
    # fetches, an HTTP write and a cursor transaction whatever its size: at 0.1 s the store
    # took 17 writes a second at 500 msgs/s with ten SOS presses.
    readings_linger_s: float = 0.5
    # ... but the local reading store feeds the duty console, where a reading shows beside its
    # alert: it keeps the shorter wait
    local_readings_linger_s: float = 0.1
    outbox_max_bytes: int = OUTBOX_MAX_BYTES
    shutdown_flush_s: float = 5.0
    hold_acks_s: float = 0.0  # test hook only: pause between commit and ack
    ready_max_backlog: int = 100_000  # /readyz turns false above this many undelivered entries
    ready_max_sink_failure_s: float = 60.0  # ... or when a sink has failed for this long
    liveness_check_s: float = 30.0  # how often silent devices are looked for
    broker_lost_after_s: float = 60.0  # a session down this long is one gateway alert
    registry_check_s: float = 5.0  # how often the registry file is checked for changes
    rules_tick_s: float = 1.0  # how often time-driven rules (holds, absence, windows) are decided
    escalation_policies: tuple[EscalationPolicy, ...] = ()  # none: nobody is escalated to
    escalation_check_s: float = 1.0  # how often due escalation steps are looked for
    flap_transitions: int = FLAP_TRANSITIONS
    flap_window_s: float = FLAP_WINDOW_S
    incident_window_s: float = INCIDENT_WINDOW_S
    away_check_s: float = 60.0  # how often households whose away date has passed are brought back
    # where households.db and visits.db live (None: the data dir); `run --shards N` points the
    # other shards at shard 0's, so every shard reads one register
    register_dir: Path | None = None


class Agent:
    """Owns every background task of the edge; use as an async context manager, then `run()`."""

    def __init__(
        self,
        config: AgentConfig,
        profiles: ProfileRegistry,
        registry: DeviceRegistry,
        sinks: Sequence[Sink],
        clock: Clock,
        *,
        registry_file: RegistryFile | None = None,
        community_rules: CommunityRules | None = None,
        owners: Sequence[str] = (),
        roster: Roster | None = None,
        reach: Reach | None = None,
        shard: Shard | None = None,
    ) -> None:
        """`owners` says who configured each of `sinks`, in order, for the error that names both
        owners of a name given twice (SinkNameTaken); the alert store's name is the agent's.
        `shard`: the slice of the buildings this process owns (None: all of them)."""
        check_sink_names(
            [
                (AlertStoreSink.name, "the gateway's alert store"),
                *(
                    (sink.name, owners[n] if n < len(owners) else f"sink {sink.name!r}")
                    for n, sink in enumerate(sinks)
                ),
            ]
        )
        self.config = config
        self.profiles = profiles
        self.shard = shard or Shard(0, 1)
        self.whole_registry = registry  # every shard's devices: a topic's owner is found in it
        self.shard_filter = ShardFilter(self.shard, profiles, lambda: self.whole_registry)
        self.registry = owned_registry(registry, self.shard)
        self.registry_file = registry_file
        self.community_rules = community_rules
        self.roster = roster  # whom escalation steps naming people reach
        self.reach = reach  # whether a channel carries an escalation step
        self.ticker: RuleTicker
        self.liveness = DeviceHealth(clock, profiles)
        self.monitor: LivenessMonitor
        self.escalator: Escalator
        self.clock = clock
        self._remote_sinks = list(sinks)
        self.alert_store: AlertStore
        self.outbox: Outbox
        self.alerts: AlertBook
        self.pipeline: Pipeline
        self.lanes: list[IngestLane] = []
        self.stream = AlertStream()
        self.forwarders: list[Forwarder] = []
        self.households: HouseholdStore  # the household register (edge.enrich.households)
        self.visits: VisitStore
        self.away_keeper: AwayKeeper
        self.care_watch: CareWatch

    async def __aenter__(self) -> Agent:
        data = self.config.data_dir
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)
        self.alert_store = AlertStore(data / "alerts.db")
        store_sink = AlertStoreSink(self.alert_store, self.stream)
        sinks: list[Sink] = [store_sink, *self._remote_sinks]
        self.outbox = Outbox(
            data / "outbox.db",
            {s.name: s.lanes for s in sinks},
            now=self.clock.now,
            max_bytes=self.config.outbox_max_bytes,
        )
        self.forwarders = [
            Forwarder(
                self.outbox,
                s,
                clock=self.clock,
                linger_s=self.config.local_readings_linger_s
                if isinstance(s, ReadingStore)
                else self.config.readings_linger_s,
            )
            for s in sinks
        ]
        # the express path: an SOS committed by a lane is in the alert store and on the live
        # stream before the lane acknowledges it, without a forwarder's wake-up, fetch and write
        # (each a wait for the busy event loop or database thread beside a telemetry flood)
        self.outbox.on_events(store_sink.show)
        # alert events committed before a crash reach the local store before anything else runs
        await self.forwarders[0].drain()
        config = self.config
        self.alerts = AlertBook(
            self.clock,
            self.alert_store.open_alerts(),
            policies=EscalationPolicies(config.escalation_policies),
            silences=SilenceBook(self.alert_store.silences(current_at=self.clock.now())),
            flaps=FlapDetector(config.flap_transitions, config.flap_window_s),
            incident_window_s=config.incident_window_s,
            roster=self.roster,
            reach=self.reach,
        )
        self.escalator = Escalator(self.alerts, self.outbox, check_s=config.escalation_check_s)
        self.liveness.reserve(self.registry.slots)
        self.pipeline = Pipeline(
            self.profiles,
            self.registry,
            RuleEngine(self.profiles, self.community_rules, RuleStateStore(data / "rules.db")),
            self.alerts,
            self.liveness,
            last_sequences=self.outbox.last_sequences(),
            owns=None if self.shard.whole else self.shard_filter.owns_topic,
        )
        marker = data / "mqtt-session"
        expect_session = marker.exists()

        def remember_session() -> None:
            if not marker.exists():
                marker.write_text(self.config.client_id)

        def session_for(
            lane: str,
        ) -> Callable[[Callable[[Delivery], None], Callable[[bool], None]], MqttSession]:
            client_id = self.config.client_id + ("-alarm" if lane == "alarm" else "")

            def make(
                on_message: Callable[[Delivery], None], on_session: Callable[[bool], None]
            ) -> MqttSession:
                return MqttSession(
                    self.config.broker,
                    client_id,
                    self.profiles.subscriptions(lane),
                    on_message,
                    clock=self.clock,
                    receive_maximum=self.config.receive_maximum,
                    protocol=self.config.mqtt_protocol,
                    keepalive_s=self.config.keepalive_s,
                    expect_session=expect_session,
                    on_connected=remember_session,
                    on_session=on_session,
                    reads_per_wakeup=self.config.telemetry_reads_per_wakeup
                    if lane == "telemetry"
                    else self.config.alarm_reads_per_wakeup,
                )

            return make

        for lane in ("alarm", "telemetry"):
            if self.profiles.subscriptions(lane):
                self.lanes.append(
                    IngestLane(
                        lane,
                        session_for(lane),
                        self.pipeline,
                        self.outbox,
                        batch_max=self.config.alarm_batch_max
                        if lane == "alarm"
                        else self.config.batch_max,
                        linger_s=self.config.alarm_linger_s
                        if lane == "alarm"
                        else self.config.telemetry_linger_s,
                        hold_acks_s=self.config.hold_acks_s,
                        retained_is_stale=lane == "alarm",
                        urgent=lane == "alarm",
                        # telemetry gives way to an alarm in hand (YIELD_MAX_S at most)
                        yields_to=self.lanes[0] if self.lanes and lane == "telemetry" else None,
                    )
                )
        self.monitor = LivenessMonitor(
            self.pipeline,
            self.outbox,
            [lane.session for lane in self.lanes],
            self.clock,
            gateway=self._gateway_ref(),
            check_s=self.config.liveness_check_s,
            broker_lost_after_s=self.config.broker_lost_after_s,
        )
        self.monitor.restore()
        self.pipeline.rules.watch(list(self.registry.devices()))
        self.ticker = RuleTicker(
            self.pipeline, self.outbox, self.clock, tick_s=self.config.rules_tick_s
        )
        register = self.config.register_dir or data
        self.households = HouseholdStore(register / "households.db")
        self.escalator.family = FamilyCaller(self.alerts, self.households, self.clock)
        self.visits = VisitStore(register / "visits.db")
        self.away_keeper = AwayKeeper(
            self.households, self.ticker, self.clock, check_s=self.config.away_check_s
        )
        self.care_watch = CareWatch(
            self.households, self.pipeline.rules, check_s=self.config.away_check_s
        )
        self.care_watch.check()  # before the first rule tick: living-alone homes are watched
        # Everything built so far (profiles, registry, libraries) lives as long as the process:
        # keep it out of the garbage collector's full scans, which otherwise grow with it.
        gc.collect()
        gc.freeze()
        _log.info(
            "agent ready: %d profiles, %d open alerts, sinks: %s",
            len(self.profiles),
            len(self.alerts),
            ", ".join(s.name for s in sinks),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for forwarder in self.forwarders:
            try:
                async with asyncio.timeout(self.config.shutdown_flush_s):
                    await forwarder.drain()
            except (TimeoutError, SinkUnavailable) as error:
                _log.warning(
                    "sink %s not flushed on shutdown (%s): entries stay in the outbox",
                    forwarder.sink.name,
                    error or "timeout",
                )
        for sink in self._remote_sinks:
            await sink.close()
        await self.outbox.close()
        self.alert_store.close()
        self.households.close()
        self.visits.close()
        self.pipeline.rules.flush()
        if self.pipeline.rules.store is not None:
            self.pipeline.rules.store.close()

    async def run(self) -> None:
        """Ingest and deliver until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for lane in self.lanes:
                tg.create_task(lane.run(), name=f"lane-{lane.name}")
            for forwarder in self.forwarders:
                tg.create_task(forwarder.run(), name=f"forward-{forwarder.sink.name}")
            tg.create_task(self.monitor.run(), name="liveness")
            tg.create_task(self.ticker.run(), name="rules")
            tg.create_task(self.escalator.run(), name="escalation")
            tg.create_task(self.away_keeper.run(), name="away")
            tg.create_task(self.care_watch.run(), name="care-watch")
            if self.registry_file is not None:
                tg.create_task(self._watch_registry(self.registry_file), name="registry")

    def _gateway_ref(self) -> DeviceRef:
        """The gateway itself, as the device of its own alerts (the broker lost)."""
        communities = {d.community for d in self.registry.devices()}
        community = communities.pop() if len(communities) == 1 else "gateway"
        return DeviceRef(
            device_id=self.config.client_id,
            model="community-edge",
            category="gateway",
            community=community,
            building="gateway",
        )

    async def _watch_registry(self, source: RegistryFile) -> None:
        while True:
            await asyncio.sleep(self.config.registry_check_s)
            if source.changed():
                registry = await asyncio.to_thread(source.reload)
                if registry is not None:
                    self.use_registry(registry)

    def use_registry(self, registry: DeviceRegistry) -> None:
        """Switch to a reloaded registry; devices that stay keep their liveness, their last
        event (repeats) and their last sequence number (gaps)."""
        self.whole_registry = registry
        self.shard_filter.forget()
        registry = owned_registry(registry, self.shard)
        old = self.registry
        moves = [
            (before.slot, ref.slot)
            for ref in registry.devices()
            if (before := old.find(ref.device_id)) is not None and before.model == ref.model
        ]
        self.liveness.rebind(moves, registry.slots)
        self.pipeline.rebind(moves, registry.slots)
        self.registry = self.pipeline.registry = registry
        self.pipeline.rules.watch(list(registry.devices()))
        self.pipeline.unregistered.forget_registered(lambda d: registry.find(d) is not None)

    @property
    def acked(self) -> int:
        return sum(lane.acked for lane in self.lanes)

    @property
    def connected(self) -> bool:
        return all(lane.session.status.connected for lane in self.lanes)

    # -- people acting on alerts ---------------------------------------------------------------

    async def acknowledge(self, alert_id: str, actor: str, note: str | None = None) -> Alert:
        return await self._act(alert_id, "acknowledge", actor, note)

    async def resolve(self, alert_id: str, actor: str, note: str | None = None) -> Alert:
        return await self._act(alert_id, "resolve", actor, note)

    async def assign(
        self, alert_id: str, assignee: str, actor: str, note: str | None = None
    ) -> Alert:
        self._check_open(alert_id, "assign")
        event = self.alerts.assign(alert_id, assignee, actor, note)
        await self._commit([event])
        return event.alert

    async def _act(self, alert_id: str, action: str, actor: str, note: str | None) -> Alert:
        self._check_open(alert_id, action)
        if action == "acknowledge":
            event = self.alerts.acknowledge(alert_id, actor, note)
        else:
            event = self.alerts.resolve(alert_id, actor, note)
        await self._commit([event])
        return event.alert

    def _check_open(self, alert_id: str, action: str) -> None:
        if self.alerts.get(alert_id) is None:
            stored = self.alert_store.get(alert_id)
            if stored is None:
                raise AlertNotFound(f"no alert {alert_id!r}")
            raise AlertTransitionError(f"cannot {action} an alert that is {stored.status}")

    async def act_on_incident(
        self, incident_id: str, action: str, actor: str, note: str | None = None
    ) -> Incident:
        """Acknowledge (its active alerts) or resolve (its open alerts) a whole incident."""
        if self.alert_store.incident(incident_id) is None:
            raise IncidentNotFound(f"no incident {incident_id!r}")
        alerts = self.alerts.in_incident(incident_id)
        if action == "acknowledge":
            events = [
                self.alerts.acknowledge(a.id, actor, note)
                for a in alerts
                if a.status == AlertStatus.ACTIVE
            ]
        else:
            events = [self.alerts.resolve(a.id, actor, note) for a in alerts]
        if not events:
            raise AlertTransitionError(f"incident {incident_id!r} has no alert to {action}")
        await self._commit(events)
        found = self.alert_store.incident(incident_id)
        assert found is not None
        return found[0]

    async def _commit(self, events: list[AlertEvent]) -> None:
        # visible at once (the outbox's express path); the forwarder's copy is ignored by id
        await self.outbox.commit(events=events)

    # -- silences ------------------------------------------------------------------------------

    def add_silence(self, spec: SilenceSpec, actor: str) -> Silence:
        silence = new_silence(spec, actor, self.clock.now())
        self.alert_store.put_silence(silence)
        self.alerts.silences.put(silence)
        _log.info("silence %s by %s: %s", silence.id, actor, silence.reason)
        return silence

    def expire_silence(self, silence_id: str, actor: str) -> Silence:
        silence = self.alert_store.silence(silence_id)
        if silence is None:
            raise SilenceNotFound(f"no silence {silence_id!r}")
        now = self.clock.now()
        if silence.over(now):
            raise AlertTransitionError(f"silence {silence_id!r} is already over")
        expired = silence.model_copy(update={"expired_at": now, "expired_by": actor})
        self.alert_store.put_silence(expired)
        self.alerts.silences.put(expired)
        return expired

    # -- what operators see --------------------------------------------------------------------

    async def readiness(self) -> list[str]:
        """Why the agent is not ready (an empty list when it is)."""
        problems = [
            f"MQTT session {lane.session.client_id!r} not connected: {lane.session.status.last_error}"
            for lane in self.lanes
            if not lane.session.status.connected
        ]
        now = self.clock.monotonic()
        for forwarder in self.forwarders:
            since = forwarder.status.failing_since
            if since is not None and now - since > self.config.ready_max_sink_failure_s:
                problems.append(
                    f"sink {forwarder.sink.name} failing for {now - since:.0f} s: "
                    f"{forwarder.status.last_error}"
                )
        for depth in await self.outbox.depths():
            if depth.depth > self.config.ready_max_backlog:
                problems.append(
                    f"outbox backlog for {depth.sink}/{depth.lane} is {depth.depth} entries "
                    f"(limit {self.config.ready_max_backlog})"
                )
        return problems

    async def health(self) -> dict[str, Any]:
        """What /healthz shows. A sink is not ok while it fails, and also while it has refused
        entries (set aside, a 4xx) within `SET_ASIDE_DEGRADES_S`: delivery goes on, but what it
        refused is not in that store, and someone has to look at why."""
        depths = await self.outbox.depths()
        now = self.clock.now()
        set_aside = await self.outbox.set_aside(now - timedelta(seconds=SET_ASIDE_DEGRADES_S))

        def refused(name: str) -> str | None:
            got = set_aside.get(name)
            if got is None:
                return None
            return (
                f"{got.count} {got.last_lane} entries refused and set aside in the last "
                f"{SET_ASIDE_DEGRADES_S // 3600} h; the latest at {got.last_at:%Y-%m-%d %H:%M:%S} "
                f"UTC: {got.last_reason}"
            )

        return {
            "mqtt": {
                "connected": self.connected,
                "broker": str(self.config.broker),
                "sessions": {
                    lane.name: {
                        "client_id": lane.session.client_id,
                        "connected": lane.session.status.connected,
                        "last_error": lane.session.status.last_error,
                        "reconnects": lane.session.status.reconnects,
                        "empty_sessions": lane.session.status.empty_sessions,
                        "broker_restarts": lane.session.status.broker_restarts,
                        "last_broker_restart": _restart_note(lane.session.status),
                    }
                    for lane in self.lanes
                },
            },
            "sinks": {
                f.sink.name: {
                    "ok": f.status.failing_since is None
                    and f.sink.name not in set_aside
                    and _store_problem(f.sink) is None,
                    "last_error": f.status.last_error,
                    "set_aside": refused(f.sink.name),
                    "store_problem": _store_problem(f.sink),
                    "delivered": f.status.delivered,
                    "backlog": sum(d.depth for d in depths if d.sink == f.sink.name),
                }
                for f in self.forwarders
            },
            "open_alerts": len(self.alerts),
            "escalation": self._escalation_health(now),
            # run --shards / two gateways: this process's slice, and the messages it left to
            # the other shards (acknowledged unread)
            "shard": {
                "index": self.shard.index,
                "count": self.shard.count,
                "dropped": self.shard_filter.dropped,
            },
            "devices": {
                "registered": len(self.registry),
                "open_enrollment": self.registry.open_enrollment,
                "by_status": self.liveness.counts(),
                "unregistered_topics": len(self.pipeline.unregistered),
                "registry_error": self.registry_file.last_error if self.registry_file else None,
            },
            "households": {
                "registered": self.households.count(),
                "away": len(self.households.away(now)),
                "problem": self.households.problem or self.visits.problem,
            },
        }

    def _escalation_health(self, now: datetime) -> dict[str, Any]:
        """Steps that reached nobody: not ok for `UNREACHED_DEGRADES_S` after the latest (but for
        a gateway configured with no channel at all: said, not degraded)."""
        unreached = self.alerts.unreached
        fault = unreached.last_fault_at
        recent = fault is not None and (now - fault).total_seconds() < UNREACHED_DEGRADES_S
        roster_error = self.alerts.roster.last_error if self.alerts.roster else None
        return {
            "ok": not recent and roster_error is None,
            "pending": self.alerts.escalations_pending,
            "unreached_steps": unreached.count,
            "last_unreached_at": unreached.last_at.isoformat() if unreached.last_at else None,
            "last_unreached": unreached.last,
            "roster_error": roster_error,
        }
