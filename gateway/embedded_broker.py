"""A small in-memory MQTT 3.1.1 / 5 broker on asyncio, for `community-edge demo` without mosquitto.

QoS 0 and 1, persistent sessions, retained messages, wildcards and shared subscriptions; no TLS,
no authentication, nothing written to disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

_log = logging.getLogger(__name__)

_CONNECT, _CONNACK, _PUBLISH, _PUBACK, _PUBREC, _PUBREL, _PUBCOMP = 1, 2, 3, 4, 5, 6, 7
_SUBSCRIBE, _SUBACK, _UNSUBSCRIBE, _UNSUBACK, _PINGREQ, _PINGRESP, _DISCONNECT = range(8, 15)

_MAX_PACKET = 16 * 1024 * 1024  # largest inbound packet; advertised to MQTT 5 clients
_SESSION_QUEUE = 100_000  # QoS 1 messages waiting per session beyond the client's window
_QOS0_BACKLOG = 8 * 1024 * 1024  # a subscriber this far behind loses QoS 0 messages
_CONNECT_TIMEOUT = 10.0
_NEVER_EXPIRES = 0xFFFFFFFF

_SESSION_EXPIRY, _RECEIVE_MAXIMUM, _TOPIC_ALIAS, _MAXIMUM_PACKET_SIZE = 0x11, 0x21, 0x23, 0x27
_ASSIGNED_CLIENT_ID, _SUBSCRIPTION_IDS_AVAILABLE = 0x12, 0x29
# End-to-end PUBLISH properties passed on to MQTT 5 subscribers: payload format, message expiry
# (forwarded as is, not counted down), content type, response topic, correlation data, user.
_FORWARDED = frozenset((0x01, 0x02, 0x03, 0x08, 0x09, 0x26))

# Reason codes the broker sends.
_MALFORMED, _PROTOCOL_ERROR, _KEEP_ALIVE_TIMEOUT, _TAKEN_OVER = 0x81, 0x82, 0x8D, 0x8E
_SHUTTING_DOWN, _BAD_TOPIC_FILTER, _BAD_TOPIC_NAME, _BAD_TOPIC_ALIAS = 0x8B, 0x8F, 0x90, 0x94
_PACKET_TOO_LARGE, _NO_SUBSCRIPTION = 0x95, 0x11


class _Malformed(Exception):
    """The peer broke the protocol; only its own connection is closed."""

    def __init__(self, reason: str, code: int = _MALFORMED) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class _Property:
    ident: int
    value: int | str | bytes | tuple[str, str]
    raw: bytes  # identifier and value as received, for forwarding


class _Reader:
    """Cursor over the body of one packet."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def at_end(self) -> bool:
        return self._pos >= len(self._data)

    def _take(self, size: int) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            raise _Malformed("packet shorter than its fields")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self._take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self._take(4), "big")

    def varint(self) -> int:
        value = 0
        for shift in (0, 7, 14, 21):
            byte = self.u8()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
        raise _Malformed("variable byte integer longer than 4 bytes")

    def binary(self) -> bytes:
        return self._take(self.u16())

    def utf8(self) -> str:
        try:
            text = self.binary().decode()
        except UnicodeDecodeError as exc:
            raise _Malformed("invalid UTF-8 string") from exc
        if "\x00" in text:
            raise _Malformed("NUL character in UTF-8 string")
        return text

    def pair(self) -> tuple[str, str]:
        return self.utf8(), self.utf8()

    def rest(self) -> bytes:
        return self._take(len(self._data) - self._pos)

    def properties(self) -> list[_Property]:
        """Read an MQTT 5 property list; unknown identifiers are malformed, unused ones skipped."""
        end = self.varint() + self._pos
        found: list[_Property] = []
        while self._pos < end:
            start = self._pos
            ident = self.varint()
            read = _PROPERTY_READERS.get(ident)
            if read is None:
                raise _Malformed(f"unknown property identifier 0x{ident:02x}")
            found.append(_Property(ident, read(self), self._data[start : self._pos]))
        if self._pos != end:
            raise _Malformed("property length does not match the properties")
        return found


# MQTT 5 property identifiers by wire type (MQTT 5.0, section 2.2.2.2).
_PROPERTY_READERS: dict[int, Callable[[_Reader], int | str | bytes | tuple[str, str]]] = {
    **dict.fromkeys((0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A), _Reader.u8),
    **dict.fromkeys((0x13, 0x21, 0x22, 0x23), _Reader.u16),
    **dict.fromkeys((0x02, 0x11, 0x18, 0x27), _Reader.u32),
    0x0B: _Reader.varint,
    **dict.fromkeys((0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F), _Reader.utf8),
    **dict.fromkeys((0x09, 0x16), _Reader.binary),
    0x26: _Reader.pair,
}


def _property_int(properties: list[_Property], ident: int, default: int) -> int:
    for prop in properties:
        if prop.ident == ident and isinstance(prop.value, int):
            return prop.value
    return default


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _utf8(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _varint(len(body)) + body


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """Read one packet: (type, fixed-header flags, body)."""
    first = (await reader.readexactly(1))[0]
    length = 0
    for shift in (0, 7, 14, 21):
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    else:
        raise _Malformed("remaining length longer than 4 bytes")
    if length > _MAX_PACKET:
        raise _Malformed(f"packet of {length} bytes is too large", _PACKET_TOO_LARGE)
    return first >> 4, first & 0x0F, await reader.readexactly(length)


def _valid_topic(topic: str) -> bool:
    return bool(topic) and "+" not in topic and "#" not in topic


def _valid_filter(filter_: str) -> bool:
    levels = filter_.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return bool(filter_)


def _parse_filter(text: str) -> tuple[str | None, str] | None:
    """Split `$share/<group>/<filter>` into (group, filter); (None, text) if not shared; None if bad."""
    group: str | None = None
    filter_ = text
    if text.startswith("$share/"):
        parts = text.split("/", 2)
        if len(parts) != 3 or not parts[1] or "+" in parts[1] or "#" in parts[1]:
            return None
        group, filter_ = parts[1], parts[2]
    return (group, filter_) if _valid_filter(filter_) else None


def _matches(filter_: str, topic: str) -> bool:
    # Wildcards at the first level do not match topics starting with "$" (MQTT 4.7.2).
    if topic.startswith("$") and filter_[:1] in ("+", "#"):
        return False
    wanted, levels = filter_.split("/"), topic.split("/")
    for index, level in enumerate(wanted):
        if level == "#":
            return True
        if index >= len(levels) or (level != "+" and level != levels[index]):
            return False
    return len(wanted) == len(levels)


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: bytes = b""  # encoded MQTT 5 properties for subscribers, see _FORWARDED


@dataclass
class _Delivery:
    """One message on its way to one session, at the QoS it is delivered with."""

    message: _Message
    qos: int
    retain: bool
    dup: bool = False

    def encode(self, version: int, packet_id: int) -> bytes:
        message = self.message
        body = _utf8(message.topic) + (_u16(packet_id) if self.qos else b"")
        if version == 5:
            body += _varint(len(message.properties)) + message.properties
        flags = self.dup << 3 | self.qos << 1 | self.retain
        return _packet(_PUBLISH, flags, body + message.payload)


@dataclass(frozen=True)
class _Subscription:
    filter: str  # without the $share/<group>/ prefix
    group: str | None
    qos: int
    no_local: bool
    retain_as_published: bool


class _Connection:
    """One network connection; it is bound to a session once CONNECT succeeds."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.peer = str(writer.get_extra_info("peername"))
        self.version = 4
        self.client_id = ""
        self.connected = False  # CONNACK sent
        self.keepalive = 0
        self.receive_maximum = 65535
        self.maximum_packet = 268_435_460  # the protocol's limit, unless the client sets one
        self.will: _Message | None = None
        self.session: _Session | None = None
        self.awaiting_release: set[int] = set()  # inbound QoS 2 packet ids before PUBREL

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def backlog(self) -> int:
        return self.writer.transport.get_write_buffer_size()

    def disconnect(self, reason: int) -> None:
        if self.connected and self.version == 5:
            self.send(_packet(_DISCONNECT, 0, bytes([reason])))


@dataclass(eq=False)
class _Session:
    """Subscriptions and QoS 1 state of one client id; may outlive its connection."""

    client_id: str
    expiry: int = 0  # seconds after disconnect; _NEVER_EXPIRES keeps it until the broker stops
    connection: _Connection | None = None
    subscriptions: dict[str, _Subscription] = field(default_factory=dict)  # key: filter as sent
    queue: deque[_Delivery] = field(default_factory=deque)
    inflight: dict[int, _Delivery] = field(default_factory=dict)  # sent, not yet PUBACKed
    dropped: int = 0
    expiry_timer: asyncio.TimerHandle | None = None
    _last_id: int = 0

    def packet_id(self) -> int:
        # Callers keep inflight below 65535 entries, so a free id exists.
        while True:
            self._last_id = self._last_id % 65535 + 1
            if self._last_id not in self.inflight:
                return self._last_id


@dataclass(eq=False)
class _SharedGroup:
    filter: str
    members: list[_Session] = field(default_factory=list)
    turn: int = 0

    def next_member(self) -> _Session:
        """Round-robin over the members, skipping those that are offline if any is online."""
        count = len(self.members)
        for step in range(count):
            index = (self.turn + step) % count
            if self.members[index].connection is not None:
                break
        else:
            index = self.turn % count
        self.turn = (index + 1) % count
        return self.members[index]


class EmbeddedBroker:
    """In-memory MQTT broker; QoS 2 publishes are accepted (PUBREC/PUBCOMP) and delivered at QoS 1."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self._port = 0
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[None], _Connection] = {}
        self._sessions: dict[str, _Session] = {}
        self._groups: dict[str, _SharedGroup] = {}  # key: "$share/<group>/<filter>"
        self._retained: dict[str, _Message] = {}
        self.dropped_messages = 0  # QoS 1 queue overflow, QoS 0 to slow or offline clients

    @property
    def port(self) -> int:
        """The bound port, once started."""
        if not self._port:
            raise RuntimeError("the broker is not started")
        return self._port

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the broker is already started")
        self._server = await asyncio.start_server(self._handle, self._host, self._requested_port)
        self._port = int(self._server.sockets[0].getsockname()[1])
        _log.info("embedded MQTT broker listening on %s:%d", self._host, self._port)

    async def stop(self) -> None:
        """Close the listener and every client connection; sessions are forgotten."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in self._handlers.values():
            conn.disconnect(_SHUTTING_DOWN)
            conn.writer.close()  # the handler sees end of stream and finishes
        if self._handlers:
            _, stuck = await asyncio.wait(list(self._handlers), timeout=1.0)
            for task in stuck:  # a peer that does not read keeps close() from flushing
                self._handlers[task].writer.transport.abort()
            if stuck:
                await asyncio.wait(stuck, timeout=1.0)
        await server.wait_closed()
        for session in self._sessions.values():
            if session.expiry_timer is not None:
                session.expiry_timer.cancel()
        self._sessions.clear()
        self._groups.clear()
        self._retained.clear()
        _log.info("embedded MQTT broker on port %d stopped", self._port)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # Connections

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(reader, writer)
        task = asyncio.current_task()
        try:
            if task is not None and self._server is not None:  # not stopping
                self._handlers[task] = conn
                await self._serve(conn)
        except _Malformed as exc:
            _log.warning("closing %s (%s): %s", conn.client_id or "client", conn.peer, exc)
            conn.disconnect(exc.code)
        except TimeoutError:
            _log.info("closing %s (%s): silent too long", conn.client_id or "client", conn.peer)
            conn.disconnect(_KEEP_ALIVE_TIMEOUT)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            _log.info("lost %s (%s): %r", conn.client_id or "client", conn.peer, exc)
        finally:
            if task is not None:
                self._handlers.pop(task, None)
            self._detach(conn)
            writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _serve(self, conn: _Connection) -> None:
        async with asyncio.timeout(_CONNECT_TIMEOUT):
            kind, _, body = await _read_packet(conn.reader)
        if kind != _CONNECT:
            raise _Malformed(f"expected CONNECT, got packet type {kind}", _PROTOCOL_ERROR)
        if not self._connect(conn, _Reader(body)):
            return
        while True:
            # Keep alive: a client silent for 1.5 times its interval is gone (MQTT 3.1.2.10).
            async with asyncio.timeout(conn.keepalive * 1.5 if conn.keepalive else None):
                kind, flags, body = await _read_packet(conn.reader)
            required = 0b0010 if kind in (_PUBREL, _SUBSCRIBE, _UNSUBSCRIBE) else 0
            if kind != _PUBLISH and flags != required:
                raise _Malformed(f"bad flags {flags:#x} for packet type {kind}")
            if kind == _DISCONNECT:
                self._receive_disconnect(conn, _Reader(body))
                return
            self._dispatch(conn, kind, flags, _Reader(body))
            await conn.writer.drain()  # a fast publisher waits for its own acks to be written

    def _connect(self, conn: _Connection, packet: _Reader) -> bool:
        """Handle CONNECT; False if it was refused (CONNACK with an error already sent)."""
        name, level = packet.utf8(), packet.u8()
        if name != "MQTT" or level not in (4, 5):
            conn.send(_packet(_CONNACK, 0, b"\x00\x01"))  # unacceptable protocol version
            return False
        conn.version = level
        flags = packet.u8()
        if flags & 0x01:
            raise _Malformed("reserved CONNECT flag set")
        clean = bool(flags & 0x02)
        conn.keepalive = packet.u16()
        properties = packet.properties() if level == 5 else []
        client_id = packet.utf8()
        will: _Message | None = None
        if flags & 0x04:
            will_properties = packet.properties() if level == 5 else []
            topic, payload, qos = packet.utf8(), packet.binary(), flags >> 3 & 0x03
            if qos == 3 or not _valid_topic(topic):
                raise _Malformed("bad will message")
            forwarded = b"".join(p.raw for p in will_properties if p.ident in _FORWARDED)
            will = _Message(topic, payload, qos, bool(flags & 0x20), forwarded)
        elif flags & 0x38:
            raise _Malformed("will QoS or retain without a will")
        if flags & 0x80:
            packet.utf8()  # user name: accepted, not checked
        if flags & 0x40:
            packet.binary()  # password: accepted, not checked
        if level == 5:
            expiry = _property_int(properties, _SESSION_EXPIRY, 0)
            conn.receive_maximum = _property_int(properties, _RECEIVE_MAXIMUM, 65535)
            conn.maximum_packet = _property_int(
                properties, _MAXIMUM_PACKET_SIZE, conn.maximum_packet
            )
            if conn.receive_maximum == 0 or conn.maximum_packet == 0:
                raise _Malformed("Receive Maximum or Maximum Packet Size of 0", _PROTOCOL_ERROR)
        else:
            expiry = 0 if clean else _NEVER_EXPIRES  # 3.1.1: a persistent session never expires
        assigned = not client_id
        if assigned:
            if level == 4 and not clean:
                conn.send(_packet(_CONNACK, 0, b"\x00\x02"))  # identifier rejected
                return False
            client_id = f"embedded-{uuid.uuid4().hex}"
        conn.client_id = client_id
        session = self._sessions.get(client_id)
        if session is not None and session.connection is not None:
            old = session.connection
            _log.info("client %s taken over by %s", client_id, conn.peer)
            old.disconnect(_TAKEN_OVER)
            old.session = None
            old.writer.close()
            session.connection = None
        present = session is not None and not clean
        if session is None or not present:
            if session is not None:
                self._drop_session(session)
            session = self._sessions[client_id] = _Session(client_id)
        elif session.expiry_timer is not None:
            session.expiry_timer.cancel()
            session.expiry_timer = None
        session.expiry = expiry
        session.connection, conn.session, conn.will = conn, session, will
        body = bytes([present, 0])
        if level == 5:
            props = bytes([_MAXIMUM_PACKET_SIZE]) + _MAX_PACKET.to_bytes(4, "big")
            props += bytes([_SUBSCRIPTION_IDS_AVAILABLE, 0])
            if assigned:
                props += bytes([_ASSIGNED_CLIENT_ID]) + _utf8(client_id)
            body += _varint(len(props)) + props
        conn.send(_packet(_CONNACK, 0, body))
        conn.connected = True
        _log.info("client %s connected from %s (MQTT %s)", client_id, conn.peer, level)
        # Resume: what was sent but not acknowledged goes again, marked as a duplicate.
        for packet_id, delivery in session.inflight.items():
            delivery.dup = True
            conn.send(delivery.encode(level, packet_id))
        self._pump(session)
        return True

    def _receive_disconnect(self, conn: _Connection, packet: _Reader) -> None:
        reason = 0 if packet.at_end else packet.u8()
        if conn.version == 5 and not packet.at_end:
            expiry = _property_int(packet.properties(), _SESSION_EXPIRY, -1)
            if expiry >= 0 and conn.session is not None:
                conn.session.expiry = expiry
        if reason != 0x04:  # 0x04: disconnect with will message
            conn.will = None
        _log.info("client %s disconnected", conn.client_id)

    def _detach(self, conn: _Connection) -> None:
        if conn.will is not None:
            self._publish(conn.will, conn.client_id)
            conn.will = None
        session = conn.session
        if session is None or session.connection is not conn:
            return
        session.connection = None
        if session.expiry == 0:
            self._drop_session(session)
        elif session.expiry != _NEVER_EXPIRES and self._server is not None:
            loop = asyncio.get_running_loop()
            session.expiry_timer = loop.call_later(session.expiry, self._expire, session)

    def _expire(self, session: _Session) -> None:
        session.expiry_timer = None
        if session.connection is None:
            _log.info("session %s expired", session.client_id)
            self._drop_session(session)

    def _drop_session(self, session: _Session) -> None:
        if session.expiry_timer is not None:
            session.expiry_timer.cancel()
        for key, sub in session.subscriptions.items():
            if sub.group is not None:
                self._leave_group(key, session)
        if self._sessions.get(session.client_id) is session:
            del self._sessions[session.client_id]

    # Packets after CONNECT

    def _dispatch(self, conn: _Connection, kind: int, flags: int, packet: _Reader) -> None:
        session = conn.session
        if session is None:
            return  # taken over: the connection is closing, its last packets are ignored
        if kind == _PUBLISH:
            self._receive_publish(conn, flags, packet)
        elif kind == _PUBACK:
            session.inflight.pop(packet.u16(), None)
            self._pump(session)
        elif kind == _PUBREL:
            packet_id = packet.u16()
            conn.awaiting_release.discard(packet_id)
            conn.send(_packet(_PUBCOMP, 0, _u16(packet_id)))
        elif kind == _SUBSCRIBE:
            self._subscribe(conn, session, packet)
        elif kind == _UNSUBSCRIBE:
            self._unsubscribe(conn, session, packet)
        elif kind == _PINGREQ:
            conn.send(_packet(_PINGRESP, 0, b""))
        else:
            raise _Malformed(f"unexpected packet type {kind}", _PROTOCOL_ERROR)

    def _receive_publish(self, conn: _Connection, flags: int, packet: _Reader) -> None:
        qos = flags >> 1 & 0x03
        if qos == 3:
            raise _Malformed("PUBLISH with QoS 3")
        topic = packet.utf8()
        if not _valid_topic(topic):
            raise _Malformed(f"invalid topic name {topic!r}", _BAD_TOPIC_NAME)
        packet_id = packet.u16() if qos else 0
        if qos and not packet_id:
            raise _Malformed("PUBLISH with packet id 0")
        properties = packet.properties() if conn.version == 5 else []
        if any(p.ident == _TOPIC_ALIAS for p in properties):
            raise _Malformed("topic aliases are not supported", _BAD_TOPIC_ALIAS)
        forwarded = b"".join(p.raw for p in properties if p.ident in _FORWARDED)
        message = _Message(topic, packet.rest(), qos, bool(flags & 0x01), forwarded)
        if qos == 2:
            # Exactly once towards the broker: route on first receipt, ignore resends until PUBREL.
            if packet_id not in conn.awaiting_release:
                conn.awaiting_release.add(packet_id)
                self._publish(message, conn.client_id)
            conn.send(_packet(_PUBREC, 0, _u16(packet_id)))
            return
        self._publish(message, conn.client_id)
        if qos == 1:
            conn.send(_packet(_PUBACK, 0, _u16(packet_id)))

    def _subscribe(self, conn: _Connection, session: _Session, packet: _Reader) -> None:
        packet_id = packet.u16()
        if conn.version == 5:
            packet.properties()  # subscription identifiers are not supported (CONNACK says so)
        requests: list[tuple[str, int]] = []
        while not packet.at_end:
            requests.append((packet.utf8(), packet.u8()))
        if not requests:
            raise _Malformed("SUBSCRIBE without topic filters", _PROTOCOL_ERROR)
        codes: list[int] = []
        for_retained: list[_Subscription] = []
        for text, options in requests:
            if options & (0xFC if conn.version == 4 else 0xC0) or options & 0x03 == 3:
                raise _Malformed(f"bad subscription options {options:#x}")
            retain_handling = options >> 4 & 0x03
            parsed = _parse_filter(text)
            if parsed is None or retain_handling == 3:
                codes.append(_BAD_TOPIC_FILTER if conn.version == 5 else 0x80)
                continue
            group, filter_ = parsed
            qos = min(options & 0x03, 1)  # QoS 2 is granted as QoS 1
            sub = _Subscription(filter_, group, qos, bool(options & 0x04), bool(options & 0x08))
            is_new = text not in session.subscriptions
            session.subscriptions[text] = sub
            if group is not None:
                shared = self._groups.setdefault(text, _SharedGroup(filter_))
                if session not in shared.members:
                    shared.members.append(session)
            elif retain_handling == 0 or (retain_handling == 1 and is_new):
                for_retained.append(sub)
            codes.append(qos)
        properties = b"\x00" if conn.version == 5 else b""
        conn.send(_packet(_SUBACK, 0, _u16(packet_id) + properties + bytes(codes)))
        for sub in for_retained:
            for message in list(self._retained.values()):
                if _matches(sub.filter, message.topic):
                    self._deliver(session, message, sub.qos, retain=True)

    def _unsubscribe(self, conn: _Connection, session: _Session, packet: _Reader) -> None:
        packet_id = packet.u16()
        if conn.version == 5:
            packet.properties()
        codes: list[int] = []
        while not packet.at_end:
            text = packet.utf8()
            sub = session.subscriptions.pop(text, None)
            if sub is not None and sub.group is not None:
                self._leave_group(text, session)
            codes.append(_NO_SUBSCRIPTION if sub is None else 0)
        if not codes:
            raise _Malformed("UNSUBSCRIBE without topic filters", _PROTOCOL_ERROR)
        body = _u16(packet_id) + (b"\x00" + bytes(codes) if conn.version == 5 else b"")
        conn.send(_packet(_UNSUBACK, 0, body))

    def _leave_group(self, key: str, session: _Session) -> None:
        shared = self._groups.get(key)
        if shared is not None and session in shared.members:
            shared.members.remove(session)
            if not shared.members:
                del self._groups[key]

    # Routing

    def _publish(self, message: _Message, sender: str) -> None:
        """Store if retained, then deliver to every matching subscription."""
        if message.retain:
            if message.payload:
                self._retained[message.topic] = message
            else:
                self._retained.pop(message.topic, None)
        for session in self._sessions.values():
            # Overlapping subscriptions of one session: one copy, at the highest QoS.
            best: _Subscription | None = None
            for sub in session.subscriptions.values():
                if (
                    sub.group is None
                    and _matches(sub.filter, message.topic)
                    and not (sub.no_local and session.client_id == sender)
                    and (best is None or sub.qos > best.qos)
                ):
                    best = sub
            if best is not None:
                retain = message.retain and best.retain_as_published
                self._deliver(session, message, best.qos, retain)
        for key, shared in self._groups.items():
            if _matches(shared.filter, message.topic):
                member = shared.next_member()
                sub = member.subscriptions[key]
                retain = message.retain and sub.retain_as_published
                self._deliver(member, message, sub.qos, retain)

    def _deliver(self, session: _Session, message: _Message, qos: int, retain: bool) -> None:
        delivery = _Delivery(message, min(message.qos, qos), retain)
        conn = session.connection
        if delivery.qos == 0:
            # QoS 0 is not queued: an offline or badly lagging subscriber misses it.
            if conn is None or conn.backlog() > _QOS0_BACKLOG:
                self.dropped_messages += 1
                return
            packet = delivery.encode(conn.version, 0)
            if len(packet) <= conn.maximum_packet:
                conn.send(packet)
            return
        if len(session.queue) >= _SESSION_QUEUE:
            # Full: drop the oldest; devices report state again, the newest readings matter most.
            session.queue.popleft()
            session.dropped += 1
            self.dropped_messages += 1
            if session.dropped % 10_000 == 1:
                _log.warning(
                    "session %s: queue full, %d dropped", session.client_id, session.dropped
                )
        session.queue.append(delivery)
        self._pump(session)

    def _pump(self, session: _Session) -> None:
        """Send queued QoS 1 messages while the client's Receive Maximum allows."""
        conn = session.connection
        while conn is not None and session.queue and len(session.inflight) < conn.receive_maximum:
            delivery = session.queue.popleft()
            packet_id = session.packet_id()
            packet = delivery.encode(conn.version, packet_id)
            if len(packet) > conn.maximum_packet:
                _log.debug("dropping %s for %s: too large", delivery.message.topic, conn.client_id)
                self.dropped_messages += 1
                continue
            session.inflight[packet_id] = delivery
            conn.send(packet)
