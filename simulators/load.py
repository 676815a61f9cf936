"""The load publisher: simulated devices at a steady rate over MQTT (QoS 1), or a named scenario.

A message counts as sent only when the broker's PUBACK arrives; in-flight and queued messages are
bounded, so memory stays flat however high the target rate.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ConfigDict

from edge.decode import ProfileRegistry
from edge.errors import TlsConfigError
from edge.ingest import BrokerAddress, TlsConfig, parse_mqtt_url
from simulators.behaviour import Timeline
from simulators.community import build_community
from simulators.faults import FaultInjector, Outgoing
from simulators.scenarios import ScenarioStep, build_scenario
from simulators.sensors import Message, SimulatedDevice

_log = logging.getLogger(__name__)

_MAX_INFLIGHT = 1000  # QoS 1 messages on the wire awaiting PUBACK (less if the broker asks)
_MAX_QUEUED = 10_000  # paho's own bound on messages it holds (in flight + waiting)
_WINDOW = _MAX_QUEUED - 100  # we stop publishing before paho would refuse a message
_TICK = 0.01  # seconds between pacing ticks: each tick publishes a batch
_BURST = 0.1  # seconds of tokens the bucket may hold: catches up after a late tick, no more
_CONNECT_TIMEOUT = 10.0


class LoadProgress(BaseModel):
    """Counts so far, reported about once a second while publishing."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    elapsed: float
    published: int  # handed to the client
    sent: int  # acknowledged by the broker
    failed: int
    in_flight: int


class LoadResult(BaseModel):
    """What a run delivered: `sent` counts messages the broker acknowledged."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sent: int
    failed: int
    seconds: float
    rate: float  # sent / seconds
    by_model: dict[str, int]  # acknowledged messages per device model
    messages: int = 0  # device messages generated (a duplicate's second copy is not one)
    by_event: dict[str, int] = {}  # generated messages per event (report, smoke, sos, ...)
    faults: dict[str, int] = {}  # publishes that carried each fault kind (see simulators.faults)


def broker_address(
    broker: str | BrokerAddress,
    *,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    key_password: str | None = None,
) -> BrokerAddress:
    """The broker to publish to, parsed as the agent parses its own (`edge.ingest`).

    `broker` is an `mqtt[s]://[user:password@]HOST[:PORT]` URL or an address already built. The
    files are the agent's `mqtt.tls` options: a CA to trust instead of the system's, a client
    certificate and its key; they need an `mqtts://` URL. Raises ValueError naming the problem.
    """
    address = broker if isinstance(broker, BrokerAddress) else parse_mqtt_url(broker)
    files = (ca_file, cert_file, key_file, key_password)
    if all(f is None for f in files):
        return address
    if address.tls is None:
        raise ValueError(f"TLS files are given but {address} is mqtt://; use mqtts://")
    tls = TlsConfig(ca_file, cert_file, key_file, key_password)
    return dataclasses.replace(address, tls=tls)


class TokenBucket:
    """Rate pacing: `rate` tokens a second, holding at most `capacity` (the largest burst)."""

    def __init__(self, rate: float, capacity: float) -> None:
        if rate <= 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a positive number, got {rate}")
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self.tokens = 0.0
        self._last: float | None = None

    def take(self, now: float, limit: int | None = None) -> int:
        """Whole tokens available at monotonic time `now` (at most `limit`), removed from the bucket."""
        if self._last is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
        self._last = now
        taken = int(self.tokens)
        if limit is not None:
            taken = max(0, min(taken, limit))
        self.tokens -= taken
        return taken


class _Publisher:
    """One paho client: connects, publishes QoS 1, and counts PUBACKs per device model."""

    def __init__(self, broker: str | BrokerAddress, client_id: str | None) -> None:
        address = broker_address(broker)
        self.url = url = str(address)  # never shows the password
        self._lock = threading.Lock()
        self._acked = threading.Condition(self._lock)
        self._pending: dict[int, str] = {}  # mid -> model, awaiting PUBACK
        self._early: dict[int, bool] = {}  # PUBACKs that beat publish() returning: mid -> ok
        self._connected = threading.Event()
        self._refused: ReasonCode | None = None
        self.window = _WINDOW  # most messages we let the client hold unacknowledged
        self.published = 0
        self.sent = 0
        self.failed = 0
        self.by_model: dict[str, int] = {}
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"ce-sim-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
        )
        self._client.max_inflight_messages_set(_MAX_INFLIGHT)
        self._client.max_queued_messages_set(_MAX_QUEUED)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        if address.username is not None:
            self._client.username_pw_set(address.username, address.password)
        if address.tls is not None:
            try:
                self._client.tls_set_context(address.tls.context())
            except TlsConfigError as exc:
                raise ValueError(f"MQTT TLS: {exc}") from exc
        try:
            self._client.connect(address.host, address.port, keepalive=30)
        except OSError as exc:
            raise ConnectionError(f"cannot connect to MQTT broker at {url}: {exc}") from exc
        self._client.loop_start()
        try:
            if not self._connected.wait(_CONNECT_TIMEOUT):
                raise ConnectionError(
                    f"no CONNACK from MQTT broker at {url} in {_CONNECT_TIMEOUT}s"
                )
            if self._refused is not None:
                raise ConnectionError(
                    f"MQTT broker at {url} refused the connection: {self._refused}"
                )
        except BaseException:
            self._client.disconnect()
            self._client.loop_stop()
            raise

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._pending)

    def wait_for_room(self, timeout: float) -> None:
        """Block until half the window is free again (or `timeout`): batches, not one per PUBACK."""
        with self._acked:
            self._acked.wait_for(lambda: len(self._pending) <= self.window // 2, timeout)

    def publish(self, topic: str, payload: bytes, model: str) -> None:
        info = self._client.publish(topic, payload, qos=1)
        # NO_CONN is fine for QoS 1: paho keeps the message and sends it after reconnecting
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            with self._lock:
                self.published += 1
                self.failed += 1
            return
        with self._lock:
            self.published += 1
            early = self._early.pop(info.mid, None)
            if early is None:
                self._pending[info.mid] = model
            else:
                self._count(model, early)

    def progress(self, started: float) -> LoadProgress:
        with self._lock:
            return LoadProgress(
                elapsed=time.monotonic() - started,
                published=self.published,
                sent=self.sent,
                failed=self.failed,
                in_flight=len(self._pending),
            )

    def drain(self, timeout: float) -> None:
        """Wait for every PUBACK; what is still unacknowledged after `timeout` counts as failed."""
        with self._acked:
            self._acked.wait_for(lambda: not self._pending, timeout)
            if self._pending:
                _log.warning(
                    "%d messages unacknowledged by %s after %.1fs",
                    len(self._pending),
                    self.url,
                    timeout,
                )
                self.failed += len(self._pending)
                self._pending.clear()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def result(self, seconds: float, **extra: Any) -> LoadResult:
        with self._lock:
            return LoadResult(
                sent=self.sent,
                failed=self.failed,
                seconds=seconds,
                rate=self.sent / seconds if seconds > 0 else 0.0,
                by_model=dict(sorted(self.by_model.items())),
                **extra,
            )

    def _count(self, model: str, ok: bool) -> None:  # caller holds the lock
        if ok:
            self.sent += 1
            self.by_model[model] = self.by_model.get(model, 0) + 1
        else:
            self.failed += 1

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._refused = reason_code
        else:
            # MQTT 5 Receive Maximum: the broker takes at most this many unacknowledged QoS 1
            # messages. paho cannot lower its limit once connected, so our window enforces it.
            receive_maximum = getattr(properties, "ReceiveMaximum", None)
            if isinstance(receive_maximum, int) and receive_maximum > 0:
                self.window = min(self.window, receive_maximum)
            _log.debug("connected to %s, window %d", self.url, self.window)
        self._connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            _log.warning("lost connection to %s (%s); paho reconnects", self.url, reason_code)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        ok = not reason_code.is_failure
        with self._lock:
            model = self._pending.pop(mid, None)
            if model is None:
                self._early[mid] = ok
            else:
                self._count(model, ok)
                self._acked.notify()


Events = Literal["routine", "realistic"]


def run_load(
    url: str | BrokerAddress,
    devices: int,
    rate: float,
    duration: float,
    *,
    community: str = "demo",
    seed: int = 0,
    progress: Callable[[LoadProgress], None] | None = None,
    client_id: str | None = None,
    ack_timeout: float = 10.0,
    profile: str | None = None,
    profiles: ProfileRegistry | None = None,
    events: Events = "routine",
    faults: FaultInjector | None = None,
    messages: int | None = None,
) -> LoadResult:
    """Publish traffic from `devices` simulated devices at `rate` msgs/s for `duration` s.

    Blocks until every message is acknowledged (or `ack_timeout` passes), then disconnects.

    Args:
        profile: a device model (profile name): all devices are of that model, e.g. a telemetry
            flood of door contacts; None for the mixed community. Unknown: ValueError.
        profiles: where `profile` and the mix are looked up (default: the shipped profiles).
        events, faults, messages: see `run_traffic`.
    """
    if devices < 1:
        raise ValueError(f"devices must be >= 1, got {devices}")
    fleet = build_community(devices, community, seed=seed, model=profile, profiles=profiles)
    return run_traffic(
        url,
        fleet,
        rate,
        duration,
        seed=seed,
        progress=progress,
        client_id=client_id,
        ack_timeout=ack_timeout,
        events=events,
        faults=faults,
        messages=messages,
    )


def run_traffic(
    url: str | BrokerAddress,
    fleet: Sequence[SimulatedDevice],
    rate: float,
    duration: float,
    *,
    seed: int = 0,
    progress: Callable[[LoadProgress], None] | None = None,
    client_id: str | None = None,
    ack_timeout: float = 10.0,
    events: Events = "routine",
    faults: FaultInjector | None = None,
    messages: int | None = None,
    alarm_scale: float = 1.0,
) -> LoadResult:
    """Publish the fleet's traffic at `rate` publishes a second, for `duration` s or `messages`.

    Args:
        events: "routine": devices take turns in a seeded round-robin, each sending its model's
            ordinary traffic (about rate/devices msgs/s each); "realistic": heartbeats, routine
            events and rare alarms at each category's real-life rates (simulators.behaviour),
            with simulated time compressed or stretched to `rate`.
        faults: damages, repeats or reorders a fraction of the messages; its `counts` are
            reported in the result.
        messages: stop after exactly this many device messages (plus duplicate copies) instead
            of after `duration`: the same seed then sends the same messages and faults.
        alarm_scale: multiplies the rare-event rates of "realistic" traffic.
    """
    if not fleet:
        raise ValueError("no devices to simulate")
    if messages is None and duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    if messages is not None and messages < 1:
        raise ValueError(f"messages must be >= 1, got {messages}")
    bucket = TokenBucket(rate, rate * _BURST)
    source = _messages(fleet, events, seed, alarm_scale)
    publisher = _Publisher(url, client_id)
    generated: Counter[str] = Counter()
    pending: deque[Outgoing] = deque()

    def next_publish() -> Outgoing | None:
        while not pending:
            if messages is not None and generated.total() >= messages:
                if faults is not None:
                    pending.extend(faults.flush())
                return pending.popleft() if pending else None
            device, message = next(source)
            generated[message.event.value] += 1
            if faults is None:
                return Outgoing(message, None)
            pending.extend(faults.apply(message, device.profile))
        return pending.popleft()

    try:
        started = time.monotonic()
        deadline = math.inf if messages is not None else started + duration
        next_report = started + 1.0
        bucket.take(started)
        done = False
        while not done:
            # the last tick takes the tokens up to the deadline
            now = min(time.monotonic(), deadline)
            for _ in range(bucket.take(now, limit=publisher.window - publisher.in_flight)):
                outgoing = next_publish()
                if outgoing is None:
                    done = True
                    break
                message = outgoing.message
                publisher.publish(message.topic, message.payload, message.model)
            if progress is not None and now >= next_report:
                progress(publisher.progress(started))
                next_report += 1.0
            if now >= deadline:
                if faults is not None:  # a message still held back goes out plain
                    for outgoing in faults.flush():
                        message = outgoing.message
                        publisher.publish(message.topic, message.payload, message.model)
                break
            elapsed = time.monotonic() - started
            pause = max(0.0, min(_TICK - elapsed % _TICK, deadline - time.monotonic()))
            if bucket.tokens >= 1:  # held back by the window: go on as soon as PUBACKs free it
                publisher.wait_for_room(pause)
            elif not done:
                time.sleep(pause)
        publisher.drain(ack_timeout)
        seconds = time.monotonic() - started
        if progress is not None:
            progress(publisher.progress(started))
    finally:
        publisher.close()
    result = publisher.result(
        seconds,
        messages=generated.total(),
        by_event=dict(sorted(generated.items())),
        faults=faults.summary() if faults is not None else {},
    )
    _log.info(
        "load: %d sent, %d failed in %.1fs (%.0f msg/s)",
        result.sent,
        result.failed,
        result.seconds,
        result.rate,
    )
    return result


def _messages(
    fleet: Sequence[SimulatedDevice], events: Events, seed: int, alarm_scale: float
) -> Iterator[tuple[SimulatedDevice, Message]]:
    """The endless stream of (device, message) the fleet sends."""
    if events == "realistic":
        for due in Timeline(fleet, seed=seed, alarm_scale=alarm_scale):
            yield due.device, due.device.message(due.event)
    elif events == "routine":
        order = list(fleet)
        random.Random(f"load:{seed}").shuffle(order)
        while True:
            for device in order:
                yield device, device.message()
    else:
        raise ValueError(f"unknown events {events!r} (known: routine, realistic)")


def run_scenario(
    url: str | BrokerAddress,
    name: str,
    community: str = "demo",
    *,
    devices: int = 4,
    seed: int = 0,
    delay_scale: float = 1.0,
    progress: Callable[[LoadProgress], None] | None = None,
    client_id: str | None = None,
    ack_timeout: float = 10.0,
) -> LoadResult:
    """Publish the named scenario's messages with their delays, played by a device of the community.

    The community is `build_community(devices, community, seed=seed)`: pass the same arguments as
    a running `run_load` to raise the alert on one of its devices.
    """
    steps = build_scenario(
        name, build_community(devices, community, seed=seed), delay_scale=delay_scale
    )
    return publish_steps(
        url, steps, progress=progress, client_id=client_id, ack_timeout=ack_timeout
    )


def publish_steps(
    url: str | BrokerAddress,
    steps: Sequence[ScenarioStep],
    *,
    progress: Callable[[LoadProgress], None] | None = None,
    client_id: str | None = None,
    ack_timeout: float = 10.0,
) -> LoadResult:
    """Publish scripted steps, each `delay` seconds after the previous one, and await their PUBACKs."""
    publisher = _Publisher(url, client_id)
    try:
        started = time.monotonic()
        due = started
        for step in steps:
            due += step.delay
            time.sleep(max(0.0, due - time.monotonic()))
            publisher.publish(step.topic, step.payload, step.device.profile.name)
            _log.info("scenario: %s %s on %s", step.device.device_id, step.event, step.topic)
            if progress is not None:
                progress(publisher.progress(started))
        publisher.drain(ack_timeout)
        seconds = time.monotonic() - started
    finally:
        publisher.close()
    return publisher.result(seconds)
