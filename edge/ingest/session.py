"""The MQTT session: paho-mqtt driven from asyncio, QoS 1, persistent session, ack after commit.

Over TLS (`mqtts://`) with a CA, a client certificate, and a username and password; TLS and
authentication failures are reported as such (`TLS: ...`, `authentication: ...`) and retried.

paho (not aiomqtt's iterator) because aiomqtt acknowledges a message before the application has
processed it; here `manual_ack=True` holds every PUBACK until `ack()` is called, once the message's
results are durable. The MQTT 5 receive-maximum bounds how many unacknowledged messages the broker
sends us: that bound is our backpressure, and nothing is ever discarded to relieve it. The session
enforces the bound itself too, by not reading the socket while it is reached (see `_read`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.clock import Clock
from edge.errors import TlsConfigError
from edge.ingest.broker import BrokerAddress, describe_tls_error
from edge.ingest.receive_times import ReceiveTimes
from edge.ingest.wire import BufferedSocket, ClosingSSLSocket, pending_bytes

_log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
# unacknowledged messages the broker may send us: the backpressure (MQTT 5 Receive Maximum);
# the gateway's `mqtt.receive_maximum` defaults to it
RECEIVE_MAXIMUM = 2000
# the MQTT version spoken: 5 (receive maximum, reason codes, session expiry) or 3.1.1 (for
# platforms and brokers that speak nothing newer)
MqttProtocol = Literal["5", "3.1.1"]
BROKER_UPTIME = "$SYS/broker/uptime"  # mosquitto: "<seconds> seconds", every sys_interval
_UPTIME_SLACK_S = 3.0  # whole seconds of uptime, and delivery delays
KEEPALIVE_S = 30  # MQTT keep-alive; the broker drops us after 1.5 of them without a packet
_INVALID_TOPIC = "<invalid utf-8 topic>"
_READS_PER_WAKEUP = 500  # packets read per readable event at most, so writes and timers run too
_PUBACK = struct.Struct("!BBH")  # PUBACK: type, remaining length 2, packet id (as paho packs it)
_PUBACK_TYPE = 0x40


# CONNACK reason codes that mean "your credentials", as MQTT 5 numbers them (3.1.1's 4 and 5
# arrive mapped to 0x86 and 0x87 by paho)
_AUTH_FAILURES = frozenset({0x85, 0x86, 0x87, 0x8C})  # client id, user/password, not authorized


class Delivery(NamedTuple):
    """One message from the broker, to be acknowledged once what it produced is durable.

    A named tuple, not a frozen dataclass: one is built per message, and a frozen dataclass's
    `__init__` sets each of its eight fields through `object.__setattr__` (4.2 us against 0.9).
    """

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    generation: int  # which connection it came on: a mid means nothing on another connection
    dup: bool = False  # the broker's DUP flag: it sent this packet id before, on this session
    retain: bool = False  # sent from the broker's retained store, not as a device published it


@dataclass
class SessionStatus:
    """What /healthz and /metrics say about the broker connection."""

    connected: bool = False
    connects: int = 0
    reconnects: int = 0
    failed_connects: int = 0  # attempts that ended before a CONNACK accepted us (TLS, auth, TCP)
    empty_sessions: int = 0  # the broker came back without our session: queued messages lost
    # the broker went away (refused connections: its process was not there) and came back with
    # our session: restored from its last save, so what it took in after that save may be lost
    broker_restarts: int = 0
    last_broker_restart: datetime | None = None
    last_error: str | None = None
    unacked: int = 0
    subscriptions: list[str] = field(default_factory=list)


class MqttSession:
    """One persistent MQTT 5 session that reconnects forever with capped, jittered backoff."""

    def __init__(
        self,
        address: BrokerAddress,
        client_id: str,
        subscriptions: list[str],
        on_message: Callable[[Delivery], None],
        *,
        clock: Clock,
        receive_maximum: int = RECEIVE_MAXIMUM,
        protocol: MqttProtocol = "5",
        session_expiry_s: int = 7 * 24 * 3600,
        keepalive_s: int = KEEPALIVE_S,
        expect_session: bool = False,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        on_connected: Callable[[], None] | None = None,
        on_session: Callable[[bool], None] | None = None,
        reads_per_wakeup: int = _READS_PER_WAKEUP,
    ) -> None:
        """`on_session(present)` runs for every accepted CONNACK, before we subscribe: with
        `present` False the broker kept nothing of ours, so nothing it sends next is a resend.
        `reads_per_wakeup`: packets parsed per readable event at most (each turn of the event
        loop); a session beside an alarm lane keeps it small, so an SOS waits for less."""
        self.address = address
        self._on_connected = on_connected
        self._on_session = on_session
        self.client_id = client_id
        self.status = SessionStatus(subscriptions=list(subscriptions))
        self._subscriptions = subscriptions
        self._on_message = on_message
        self._clock = clock
        self._receive_maximum = receive_maximum
        self._reads_per_wakeup = reads_per_wakeup
        self._v5 = protocol == "5"
        self._session_expiry_s = session_expiry_s
        self._keepalive_s = keepalive_s
        self._expect_session = expect_session
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: paho.Client | None = None
        self._connack: asyncio.Future[bool] | None = None
        self._closed = asyncio.Event()
        self._deferred: list[Callable[[], None]] | None = None
        self._sock: Any = None
        self._received = 0
        self.taken = 0  # PUBLISH packets read without paho (`BufferedSocket.take_publish`)
        self._receive_times = ReceiveTimes()
        self._paused = False  # not reading: receive-maximum messages are unacknowledged
        self._pause_timer: asyncio.TimerHandle | None = None
        self._attempt_failed = False  # this connection attempt already has its reason
        self._buffered: BufferedSocket | None = None  # this connection's socket, for TLS errors
        # the broker's `$SYS/broker/uptime` last seen, and when (monotonic): a smaller uptime
        # than the time since says it restarted
        self._uptime: tuple[float, float] | None = None
        self._session_present = True  # the last CONNACK's session-present flag

    # -- public --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, and reconnect after every loss, until cancelled."""
        self._loop = asyncio.get_running_loop()
        delay = self._backoff_initial_s
        try:
            while True:
                connected = await self._connect_once()
                if not connected:
                    self.status.failed_connects += 1
                if connected:
                    delay = self._backoff_initial_s
                    misc = asyncio.create_task(self._misc_loop(), name="mqtt-misc")
                    try:
                        await self._closed.wait()
                    finally:
                        misc.cancel()
                        await asyncio.gather(misc, return_exceptions=True)
                    self.status.reconnects += 1
                    _log.warning(
                        "lost the broker at %s: %s; reconnecting",
                        self.address,
                        self.status.last_error,
                    )
                self._teardown()
                sleep = random.uniform(
                    delay / 2, delay
                )  # jitter: gateways do not reconnect in step
                delay = min(delay * 2, self._backoff_max_s)
                await asyncio.sleep(sleep)
        finally:
            self._teardown(disconnect=True)

    def ack(self, deliveries: Iterable[Delivery]) -> int:
        """Acknowledge deliveries of the current connection; returns how many were acked.

        Deliveries from an earlier connection are skipped: the broker resends them (DUP, same
        packet id) and the lane's receipts recognise the resend, so it yields nothing new.
        """
        client = self._client
        sock = self._buffered
        if client is None or sock is None or client._sock is not sock:
            sock = None  # not our socket (yet): paho writes every PUBACK
        acked = 0
        wrote = False
        for delivery in deliveries:
            if delivery.qos == 0 or client is None or delivery.generation != self._generation:
                continue  # the counter was reset with the connection these came on
            self.status.unacked -= 1
            if delivery.qos == 1 and sock is not None and not client._out_packet:
                self._send_puback(client, sock, delivery.mid)
                wrote = True
            else:  # paho has output queued: behind it, in order
                client.ack(delivery.mid, delivery.qos)
            acked += 1
        if wrote and client is not None:
            client._last_msg_out = time.monotonic()  # paho's keep-alive clock: we wrote
        if self._paused and client is not None and self.status.unacked < self._receive_maximum:
            self._resume(client)
        return acked

    @staticmethod
    def _send_puback(client: paho.Client, sock: BufferedSocket, mid: int) -> None:
        """One PUBACK in one send(), as paho writes it, without paho's per-packet machinery
        (its log call, an output-queue entry, the writer's registration and an event-loop turn
        to `loop_write`: 4 % of the event loop in a burst). One send() per PUBACK on purpose:
        a batch's PUBACKs in one send() were taken by mosquitto 2.0.11 at 1,250-1,400 a
        second against 3,350. Whatever the socket does not take now goes to paho's queue, so
        it and every later PUBACK are written by paho, in order, and a failure is met and
        reported by paho's write as before."""
        packet = _PUBACK.pack(_PUBACK_TYPE, 2, mid)
        try:
            sent = sock.send(packet)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            sent = 0
        except OSError:
            client.ack(mid, 1)  # the connection is failing: paho's write meets it and says so
            return
        if sent < len(packet):
            client._packet_queue(_PUBACK_TYPE, packet[sent:], mid, 1)

    # -- connection ----------------------------------------------------------------------------

    async def _connect_once(self) -> bool:
        assert self._loop is not None
        self._generation += 1
        self._closed = asyncio.Event()
        self._attempt_failed = False
        self._buffered = None
        self.status.unacked = 0
        self._paused = False
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._pause_timer = None
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311,
            # 3.1.1 has no session expiry: a session is kept while clean_session is off
            clean_session=None if self._v5 else False,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        if self.address.username is not None:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls is not None:
            try:
                context = self.address.tls.context()
                # paho leaves the socket of a failed handshake open: this class closes it
                context.sslsocket_class = ClosingSSLSocket
                client.tls_set_context(context)
            except TlsConfigError as exc:  # a file gone or broken since start: retried
                self._note_error(f"TLS: {exc}")
                return False
        # handlers registered before connecting: nothing that arrives early is missed
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_subscribe = self._handle_subscribe
        client.on_message = self._handle_message
        client.on_socket_open = self._handle_socket_open
        client.on_socket_close = self._handle_socket_close
        client.on_socket_register_write = self._handle_register_write
        client.on_socket_unregister_write = self._handle_unregister_write
        client.connect_timeout = CONNECT_TIMEOUT_S
        self._client = client
        self._connack = self._loop.create_future()
        options: dict[str, Any] = {}
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self._session_expiry_s
            # 3.1.1 has no receive maximum: there the broker's in-flight window and our own
            # reading pause at `receive_maximum` unacknowledged messages bound what we hold
            properties.ReceiveMaximum = self._receive_maximum
            # keep the broker's session (and its queued messages)
            options = {"clean_start": False, "properties": properties}
        self._deferred = []
        try:
            # the TCP connect blocks; socket callbacks from that thread are replayed here after
            await asyncio.to_thread(
                client.connect,
                self.address.host,
                self.address.port,
                self._keepalive_s,
                **options,
            )
        except (ssl.SSLError, ssl.CertificateError) as exc:  # before OSError: a subclass
            self._deferred = None
            self._note_error(f"{describe_tls_error(exc)} (broker {self.address})")
            return False
        except (OSError, ValueError) as exc:
            self._deferred = None
            self._note_error(f"cannot connect to {self.address}: {exc}")
            return False
        deferred, self._deferred = self._deferred, None
        for action in deferred:
            action()
        raw_socket = getattr(client, "_sock", None)  # paho 2.x keeps its socket here
        if isinstance(raw_socket, socket.socket):
            self._buffered = client._sock = BufferedSocket(raw_socket)
        try:
            # a timeout scope, not `wait_for`: on Python 3.11 `wait_for` swallows a cancellation
            # that comes as the CONNACK does (cpython gh-86296), and a stop then waited forever
            # on the connection it had just made (the demo ignored Ctrl-C)
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                return await self._connack
        except TimeoutError:
            self._note_error(f"no CONNACK from {self.address} within {CONNECT_TIMEOUT_S:.0f} s")
            return False

    def _note_error(self, message: str) -> None:
        """A failed connection attempt: logged when it differs from the last one."""
        if self.status.last_error != message:
            _log.warning("%s", message)
        self.status.last_error = message
        self.status.connected = False
        self._attempt_failed = True

    def _teardown(self, disconnect: bool = False) -> None:
        client, self._client = self._client, None
        was_connected, self.status.connected = self.status.connected, False
        if client is None:
            return
        if disconnect and was_connected:
            client.disconnect()
            client.loop_write()  # send DISCONNECT now: the loop will not write for us any more
        sock = self._sock
        if sock is not None and self._loop is not None and sock.fileno() >= 0:
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
        self._sock = None
        try:
            sock_obj = client.socket()
            if sock_obj is not None:
                sock_obj.close()
        except OSError:
            pass

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            client = self._client
            if client is None:
                return
            if client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._mark_closed("keep-alive failed")
                return

    def _mark_closed(self, reason: str) -> None:
        self.status.connected = False
        connecting = self._connack is not None and not self._connack.done()
        if self._attempt_failed:
            pass  # keep the first reason: a refused CONNACK, then the broker's close, says less
        elif connecting:
            self._note_error(reason)  # e.g. the broker's TLS alert before any CONNACK: logged
        else:
            self.status.last_error = reason  # run() logs the loss of an accepted connection
        self._closed.set()
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(False)

    # -- paho callbacks (all on the event loop thread, except during connect) --------------------

    def _soon(self, action: Callable[[], None]) -> None:
        if self._deferred is not None:
            self._deferred.append(action)
        else:
            action()

    def _handle_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def register() -> None:
            assert self._loop is not None
            self._sock = sock
            self._loop.add_reader(sock, self._read, client)

        self._soon(register)

    def _handle_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def unregister() -> None:
            assert self._loop is not None
            if sock.fileno() >= 0:  # paho may report a socket we already closed
                self._loop.remove_reader(sock)
                self._loop.remove_writer(sock)
            if self._sock is sock:
                self._sock = None

        self._soon(unregister)

    def _handle_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def register() -> None:
            assert self._loop is not None
            self._loop.add_writer(sock, self._write, client)

        self._soon(register)

    def _handle_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def unregister() -> None:
            assert self._loop is not None
            if sock.fileno() >= 0:
                self._loop.remove_writer(sock)

        self._soon(unregister)

    def _read(self, client: paho.Client, bounded: bool = True) -> None:
        # paho's loop_read() handles one packet per call; keep calling while packets keep
        # coming, so one readable event takes a whole burst instead of one event-loop turn each.
        # A plain PUBLISH already in our buffer is taken without paho (`take_publish`).
        sock = getattr(client, "_sock", None)
        buffered = sock if isinstance(sock, BufferedSocket) else None
        taken = self.taken
        try:
            self._read_packets(client, buffered, bounded)
        finally:
            if self.taken != taken:
                # what paho's keep-alive looks at (paho's clock): a packet came from the broker
                client._last_bytes_received = time.monotonic()

    def _read_packets(
        self, client: paho.Client, buffered: BufferedSocket | None, bounded: bool
    ) -> None:
        for _ in range(self._reads_per_wakeup):
            if bounded and self.status.unacked >= self._receive_maximum and client is self._client:
                # mosquitto 2.0.11 overshoots our receive maximum when acks come in batches
                # under a flood (eclipse-mosquitto/mosquitto#2301; 36,877 unacked for a
                # receive maximum of 2,000 in a test here, 90,500 in the bench): every message
                # read is held in memory until its batch commits (95,000 deliveries, 55 MB at
                # the 100,000-device peak). Stop reading instead; TCP holds the rest in the
                # broker, and `ack()` resumes. Nothing is discarded.
                self._pause()
                return
            before = self._received
            if buffered is not None and not client._in_packet["command"]:  # between packets
                if not buffered.fill():
                    return  # nothing more to read: the socket wakes us when there is
                publish = buffered.take_publish(self._v5)
                if publish is not None:
                    self.taken += 1
                    try:  # what paho would have handed us (inline: one call less a message)
                        topic = publish.topic.decode()
                    except UnicodeDecodeError:
                        topic = _INVALID_TOPIC
                    payload, mid, qos, dup, retain = publish[1:]
                    self._deliver(client, topic, payload, mid, qos, dup, retain)
                    if not buffered.pending():
                        # read it all: a trickle's next recv() would only raise EAGAIN (a
                        # syscall and an exception per message); the socket wakes us for more
                        return
                    continue
            rc = client.loop_read()
            if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
                self._mark_closed(self._tls_failure() or f"read failed: {paho.error_string(rc)}")
                return
            if client is not self._client:
                return
            # a packet other than PUBLISH (CONNACK, SUBACK) may sit before buffered messages:
            # the socket will not wake us for bytes already read off it
            if self._received == before and not pending_bytes(buffered):
                return
        # stopped at the cap with bytes still buffered: the socket may not wake us for them
        if pending_bytes(buffered) and self._loop:
            self._loop.call_soon(self._read, client)

    def _tls_failure(self) -> str | None:
        """The TLS error that ended this connection, if one did (paho reports only a loss)."""
        sock = self._buffered
        if sock is None or sock.tls_error is None:
            return None
        return f"{describe_tls_error(sock.tls_error)} (broker {self.address})"

    def _pause(self) -> None:
        sock = self._sock
        if sock is None or self._loop is None or sock.fileno() < 0:
            return
        self._loop.remove_reader(sock)
        self._paused = True
        # A pause lasts half a keep-alive at most: paho drops a connection that reads nothing
        # (not even the PINGRESP) for two keep-alives, and a stalled commit (a full disk) must
        # not turn into reconnects and redeliveries. A broker that gets no acks sends nothing
        # past the receive maximum, so reading then takes in only what it already sent.
        self._pause_timer = self._loop.call_later(
            self._keepalive_s / 2, self._resume, self._client, False
        )

    def _resume(self, client: paho.Client | None, bounded: bool = True) -> None:
        if not self._paused:
            return  # resumed already, by an ack or the timer
        self._paused = False
        if self._pause_timer is not None:
            self._pause_timer.cancel()  # this pause is over: its timer must not end a later one
            self._pause_timer = None
        sock = self._sock
        if client is None or client is not self._client or sock is None or self._loop is None:
            return  # the connection is gone; a new one registers its own reader
        if sock.fileno() < 0:
            return
        self._loop.add_reader(sock, self._read, client)
        # bytes already in the BufferedSocket would not wake the reader: read them now
        self._loop.call_soon(self._read, client, bounded)

    def _write(self, client: paho.Client) -> None:
        rc = client.loop_write()
        if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
            self._mark_closed(self._tls_failure() or f"write failed: {paho.error_string(rc)}")

    def _handle_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            if reason_code.value in _AUTH_FAILURES:
                who = (
                    "without a username"
                    if self.address.username is None
                    else (f"as user {self.address.username!r}")
                )
                self._note_error(
                    f"authentication: broker {self.address} refused client {self.client_id!r} "
                    f"{who}: {reason_code}"
                )
            else:
                self._note_error(f"broker {self.address} refused the connection: {reason_code}")
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(False)
            return
        self.status.connected = True
        self.status.connects += 1
        self.status.last_error = None
        self._session_present = bool(flags.session_present) or not self._expect_session
        if not flags.session_present and self._expect_session:
            self.status.empty_sessions += 1
            _log.error(
                "broker %s came back without our session %r: messages queued for us while we "
                "were away may be lost (empty sessions so far: %d)",
                self.address,
                self.client_id,
                self.status.empty_sessions,
            )
        _log.info(
            "connected to %s as %r (session present: %s)",
            self.address,
            self.client_id,
            flags.session_present,
        )
        self._expect_session = True
        if self._on_session is not None:
            # before SUBSCRIBE: a broker without our session sends nothing until we subscribe
            self._on_session(flags.session_present)
        # always (re)subscribe: harmless for a present session, needed for a new one; beside the
        # topics, the broker's uptime (QoS 0, every sys_interval), to see it restart under a
        # session it gives back; a broker whose ACL hides $SYS sends nothing: no harm
        if self._v5:
            # retain handling 1: the broker's retained messages only for a subscription it did
            # not have, not again on every reconnect (each copy would be handled as new)
            options = SubscribeOptions(
                qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
            )
            client.subscribe(
                [
                    *((topic, options) for topic in self._subscriptions),
                    (BROKER_UPTIME, SubscribeOptions(qos=0)),
                ]
            )
        else:
            # 3.1.1 has no retain handling: a retained alarm arrives flagged and is set aside
            # as stale by the pipeline, never raised as a new alarm
            client.subscribe([*((topic, 1) for topic in self._subscriptions), (BROKER_UPTIME, 0)])
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(True)
        if self._on_connected is not None:
            self._on_connected()

    def _handle_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        for topic, code in zip(self._subscriptions, reason_codes, strict=False):
            if code.is_failure:
                _log.error("broker refused subscription %r: %s", topic, code)
            elif code.value < 1:
                _log.error("broker granted only QoS 0 for %r: messages can be lost", topic)

    def _handle_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if client is self._client:
            self._mark_closed(self._tls_failure() or f"disconnected: {reason_code}")

    def _handle_message(
        self, client: paho.Client, userdata: Any, message: paho.MQTTMessage
    ) -> None:
        # a PUBLISH that paho read (the first bytes of a read, QoS 2, MQTT 5 properties)
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = _INVALID_TOPIC
        self._deliver(
            client,
            topic,
            bytes(message.payload),
            message.mid,
            message.qos,
            bool(message.dup),
            bool(message.retain),
        )

    def _deliver(
        self,
        client: paho.Client,
        topic: str,
        payload: bytes,
        mid: int,
        qos: int,
        dup: bool,
        retain: bool,
    ) -> None:
        # must never raise: paho would drop the connection with the message unacknowledged
        if topic == BROKER_UPTIME:
            self._note_uptime(payload)
            if qos:
                client.ack(mid, qos)
            return
        self._received += 1
        if qos:
            self.status.unacked += 1
        try:
            self._on_message(
                Delivery(  # positional: keywords cost a named tuple 0.9 us more
                    topic,
                    payload,
                    mid,
                    qos,
                    self._receive_times.stamp(topic, self._clock.now()),
                    self._generation,
                    dup,
                    retain,
                )
            )
        except Exception:
            _log.exception("message handler failed for %r; the message stays unacknowledged", topic)

    def _note_uptime(self, payload: bytes | bytearray) -> None:
        """The broker's uptime: one smaller than the last plus the time since is a restart."""
        try:
            uptime = float(payload.split()[0])
        except (IndexError, ValueError):
            return
        now = self._clock.monotonic()
        last = self._uptime
        self._uptime = (uptime, now)
        if last is None or uptime + _UPTIME_SLACK_S >= last[0] + (now - last[1]):
            return
        if not self._session_present:
            return  # it came back without our session: reported as an empty session
        self.status.broker_restarts += 1
        self.status.last_broker_restart = self._clock.now()
        _log.error(
            "broker %s restarted about %.0f s ago (its uptime is %.0f s) and kept our session "
            "%r from its last save: messages it accepted from devices after that save are lost; "
            "devices that number their messages show them as sequence gaps, others cannot "
            "(broker restarts so far: %d)",
            self.address,
            uptime,
            uptime,
            self.client_id,
            self.status.broker_restarts,
        )
