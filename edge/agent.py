"""The agent: one MQTT session, the pipeline, the outbox and a forwarder per sink, in one TaskGroup.

A message is acknowledged to the broker only after its reading, alert events or dead letter are
committed to the outbox. Commits are batched: whatever arrived while the previous commit was on
its way to disk goes into the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from edge.alert_store import AlertStore, AlertStoreSink
from edge.alerts import AlertBook
from edge.clock import Clock
from edge.errors import AlertNotFound, AlertTransitionError, SinkUnavailable
from edge.forwarder import Forwarder
from edge.model import Alert, AlertEvent, DeadLetter, RawMessage, Reading
from edge.mqtt import BrokerAddress, Delivery, MqttSession
from edge.outbox import Outbox
from edge.pipeline import Pipeline
from edge.profiles import ProfileRegistry
from edge.registry import DeviceRegistry
from edge.rules import RuleEngine
from edge.sinks import Sink

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentConfig:
    """Plain values the agent needs; the gateway builds it from its settings."""

    broker: BrokerAddress
    client_id: str
    data_dir: Path
    receive_maximum: int = 2000  # unacknowledged messages the broker may send us: the backpressure
    batch_max: int = 1000  # messages per outbox transaction at most
    outbox_max_bytes: int = 2 * 1024**3
    shutdown_flush_s: float = 5.0


class Agent:
    """Owns every background task of the edge; use as an async context manager, then `run()`."""

    def __init__(
        self,
        config: AgentConfig,
        profiles: ProfileRegistry,
        registry: DeviceRegistry,
        sinks: Sequence[Sink],
        clock: Clock,
    ) -> None:
        self.config = config
        self.profiles = profiles
        self.registry = registry
        self.clock = clock
        self._remote_sinks = list(sinks)
        self._inbox: deque[Delivery] = deque()
        self._wake = asyncio.Event()
        self.acked = 0
        self.committed_batches = 0
        self.alert_store: AlertStore
        self.outbox: Outbox
        self.alerts: AlertBook
        self.pipeline: Pipeline
        self.session: MqttSession
        self.forwarders: list[Forwarder] = []

    async def __aenter__(self) -> Agent:
        data = self.config.data_dir
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)
        self.alert_store = AlertStore(data / "alerts.db")
        store_sink = AlertStoreSink(self.alert_store)
        sinks: list[Sink] = [store_sink, *self._remote_sinks]
        self.outbox = Outbox(
            data / "outbox.db",
            {s.name: s.lanes for s in sinks},
            now=self.clock.now,
            max_bytes=self.config.outbox_max_bytes,
        )
        self.forwarders = [Forwarder(self.outbox, s, clock=self.clock) for s in sinks]
        # alert events committed before a crash reach the local store before anything else runs
        await self.forwarders[0].drain()
        self.alerts = AlertBook(self.clock, self.alert_store.open_alerts())
        self.pipeline = Pipeline(
            self.profiles, self.registry, RuleEngine(self.profiles), self.alerts
        )
        marker = data / "mqtt-session"

        def remember_session() -> None:
            if not marker.exists():
                marker.write_text(self.config.client_id)

        self.session = MqttSession(
            self.config.broker,
            self.config.client_id,
            self.profiles.subscriptions(),
            self._receive,
            clock=self.clock,
            receive_maximum=self.config.receive_maximum,
            expect_session=marker.exists(),
            on_connected=remember_session,
        )
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
                await asyncio.wait_for(forwarder.drain(), self.config.shutdown_flush_s)
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

    async def run(self) -> None:
        """Ingest and deliver until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.session.run(), name="mqtt")
            tg.create_task(self._ingest(), name="ingest")
            for forwarder in self.forwarders:
                tg.create_task(forwarder.run(), name=f"forward-{forwarder.sink.name}")

    # -- ingest --------------------------------------------------------------------------------

    def _receive(self, delivery: Delivery) -> None:
        # No bound here on purpose: the broker sends at most `receive_maximum` unacknowledged
        # messages, so this deque never holds more than that.
        self._inbox.append(delivery)
        self._wake.set()

    async def _ingest(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._inbox:
                count = min(len(self._inbox), self.config.batch_max)
                batch = [self._inbox.popleft() for _ in range(count)]
                await self._process(batch)

    async def _process(self, batch: list[Delivery]) -> None:
        readings: list[Reading] = []
        events: list[AlertEvent] = []
        dead: list[DeadLetter] = []
        for delivery in batch:
            raw = RawMessage.model_construct(
                topic=delivery.topic, payload=delivery.payload, received_at=delivery.received_at
            )
            out = self.pipeline.handle(raw)
            if out.reading is not None:
                readings.append(out.reading)
            events.extend(out.events)
            if out.dead_letter is not None:
                dead.append(out.dead_letter)
        await self._commit(readings, events, dead)
        self.committed_batches += 1
        self.acked += self.session.ack(batch)

    async def _commit(
        self, readings: list[Reading], events: list[AlertEvent], dead: list[DeadLetter]
    ) -> None:
        delay = 0.1
        while True:
            try:
                await self.outbox.commit(readings, events, dead)
                return
            except Exception:  # disk full, I/O error: nothing is acked until this succeeds
                _log.exception(
                    "outbox commit failed; retrying in %.1f s (nothing acknowledged)", delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    # -- people acting on alerts ---------------------------------------------------------------

    async def acknowledge(self, alert_id: str, actor: str, note: str | None = None) -> Alert:
        return await self._act(alert_id, "acknowledge", actor, note)

    async def resolve(self, alert_id: str, actor: str, note: str | None = None) -> Alert:
        return await self._act(alert_id, "resolve", actor, note)

    async def _act(self, alert_id: str, action: str, actor: str, note: str | None) -> Alert:
        if self.alerts.get(alert_id) is None:
            stored = self.alert_store.get(alert_id)
            if stored is None:
                raise AlertNotFound(f"no alert {alert_id!r}")
            raise AlertTransitionError(f"cannot {action} an alert that is {stored.status}")
        if action == "acknowledge":
            event = self.alerts.acknowledge(alert_id, actor, note)
        else:
            event = self.alerts.resolve(alert_id, actor, note)
        await self.outbox.commit(events=[event])
        self.alert_store.apply([event])  # visible at once; the forwarder's copy is ignored by id
        return event.alert

    # -- what operators see --------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        depths = await self.outbox.depths()
        return {
            "mqtt": {
                "connected": self.session.status.connected,
                "broker": str(self.config.broker),
                "last_error": self.session.status.last_error,
                "reconnects": self.session.status.reconnects,
                "empty_sessions": self.session.status.empty_sessions,
            },
            "sinks": {
                f.sink.name: {
                    "ok": f.status.failing_since is None,
                    "last_error": f.status.last_error,
                    "delivered": f.status.delivered,
                    "backlog": sum(d.depth for d in depths if d.sink == f.sink.name),
                }
                for f in self.forwarders
            },
            "open_alerts": len(self.alerts),
        }
