"""The bench rig: a private broker, a private VictoriaMetrics and the agents, all in one temp dir.

Servers come from `tests.servers` and agents from `tests.agent_process` (run from the repository
root). `close()` stops every process it started and removes the directory, also after a Ctrl-C.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.traffic import COUNTED_FIELDS
from tests.agent_process import AgentProcess
from tests.servers import MosquittoServer, VictoriaMetricsServer

# A gateway broker tuned for speed: a window of 1000 unacknowledged messages per session (also
# the receive maximum it advertises to publishers), unlimited queues for offline sessions, QoS 0
# never queued beside QoS 1, no Nagle delay (TCP_NODELAY), no persistence (nothing here outlives
# the run).
BROKER_CONFIG = (
    "max_inflight_messages 1000",
    "max_queued_messages 0",
    "queue_qos0_messages false",
    "set_tcp_nodelay true",  # as deploy/mosquitto-gateway.conf: no Nagle delay before an SOS
)
SESSION_EXPIRY_S = 3600

DELIVERED = 'community_edge_sink_delivered_total{sink="tsdb"}'
BACKLOG = 'community_edge_outbox_depth{lane="readings",sink="tsdb"}'
ACKED_PREFIX = "community_edge_messages_acked_total"
UNACKED_PREFIX = "community_edge_mqtt_unacked"


class BenchError(RuntimeError):
    """The bench could not measure what it meant to (a timeout, a count that never came)."""


def client_ids(agent: AgentProcess) -> tuple[str, str]:
    """The agent's two MQTT sessions: telemetry `<client id>` and `<client id>-alarm`."""
    return agent.client_id, f"{agent.client_id}-alarm"


def total(metrics: dict[str, float], prefix: str) -> float:
    """The sum of every sample whose `name{labels}` starts with `prefix`."""
    return sum(v for k, v in metrics.items() if k.startswith(prefix))


class Rig:
    """Owns the bench's servers, agents and directory."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="community-edge-bench-"))
        self._agents: list[AgentProcess] = []
        self.broker = MosquittoServer(extra_config=BROKER_CONFIG, directory=self.root / "mqtt")
        self.tsdb = VictoriaMetricsServer(directory=self.root / "tsdb")

    def __enter__(self) -> Self:
        try:
            self.broker.start()
            self.tsdb.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def agent(self, name: str, extra_args: Sequence[str] = ()) -> AgentProcess:
        """A `community-edge run` writing to the bench's VictoriaMetrics (not started yet)."""
        agent = AgentProcess(
            self.root / name, self.broker.url, ["--tsdb-url", self.tsdb.url, *extra_args]
        )
        self._agents.append(agent)
        return agent

    def stop_agent(self, agent: AgentProcess, forget: bool = False) -> None:
        """SIGINT (as Ctrl-C); `forget` also ends its broker sessions, so nothing queues for it."""
        agent.stop()
        if forget:
            for client_id in client_ids(agent):
                self.forget_session(client_id)

    def forget_session(self, client_id: str) -> None:
        """Connect as `client_id` with a clean start and no expiry: the broker drops the session."""
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        connected = threading.Event()
        client.on_connect = lambda *args: connected.set()
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 0
        client.connect(self.broker.host, self.broker.port, clean_start=True, properties=properties)
        client.loop_start()
        try:
            if not connected.wait(10):
                raise BenchError(f"could not end the session {client_id!r}")
        finally:
            client.disconnect()
            client.loop_stop()

    def count_points(self, community: str) -> int:
        """Readings of `community` stored in VictoriaMetrics (one counted field per message)."""
        names = "|".join(COUNTED_FIELDS)
        return self.tsdb.count_samples(f'{{__name__=~"{names}",community="{community}"}}')

    def wait_points(self, community: str, expected: int, within_s: float = 30.0) -> int:
        """Count until `expected` points are searchable (new series take a moment) or time is up."""
        deadline = time.monotonic() + within_s
        while True:
            stored = self.count_points(community)
            if stored >= expected or time.monotonic() > deadline:
                return stored
            time.sleep(0.5)

    def close(self) -> None:
        for agent in self._agents:
            with contextlib.suppress(Exception):
                agent.__exit__(None, None, None)
        self._agents.clear()
        for server in (self.broker, self.tsdb):
            with contextlib.suppress(Exception):
                server.close()
        shutil.rmtree(self.root, ignore_errors=True)


def wait_until(
    condition: Callable[[], bool], within_s: float, what: str, poll_s: float = 0.05
) -> float:
    """Poll until `condition()` holds; returns the monotonic time it was first seen to hold."""
    deadline = time.monotonic() + within_s
    while True:
        if condition():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not within {within_s:.0f} s")
        time.sleep(poll_s)
