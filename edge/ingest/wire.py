"""paho-mqtt's wire layer made cheaper for a consumer that reads thousands of messages a second:
MQTT 5 property tables shared instead of rebuilt per PUBLISH, one socket read serving many packets,
a plain QoS 0/1 PUBLISH taken straight from that read, and an SSL socket that closes itself when
its handshake fails.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any, NamedTuple

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_log = logging.getLogger(__name__)


class _PublishProperties(Properties):
    """paho's `Properties` rebuilds its tables of ~30 property names and types for every packet
    (9.7 us) and then scans them to clear itself (5 us): 14.7 us of every PUBLISH, about an
    eighth of the agent's event-loop time per message. The tables are constants that paho only
    reads, so this shares one copy; a packet without properties (a device's PUBLISH) returns at
    once. Packets with properties are parsed by paho's own code, unchanged.
    """

    _TABLES = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]

    def __init__(self, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)
        object.__setattr__(self, "types", self._TABLES.types)
        object.__setattr__(self, "names", self._TABLES.names)
        object.__setattr__(self, "properties", self._TABLES.properties)

    def unpack(self, buffer: bytes | bytearray) -> tuple[Properties, int]:
        if buffer[:1] == b"\x00":  # property length 0: nothing to read, nothing to clear
            return self, 1
        result: tuple[Properties, int] = super().unpack(buffer)  # type: ignore[no-untyped-call]
        return result


def _share_property_tables() -> None:
    """Have paho's packet decoder (paho 2.2: `paho.mqtt._packet`) build `_PublishProperties`."""
    try:
        import paho.mqtt._packet as packet_module
    except ImportError:  # another paho layout: keep its own, slower, behaviour
        _log.info("paho.mqtt._packet not found: MQTT 5 properties parsed by paho as it is")
        return
    if getattr(packet_module, "Properties", None) is Properties:
        setattr(packet_module, "Properties", _PublishProperties)  # noqa: B010  # untyped export


_share_property_tables()


class Publish(NamedTuple):
    """A PUBLISH packet as it came off the wire (`BufferedSocket.take_publish`)."""

    topic: bytes
    payload: bytes
    mid: int  # 0 for QoS 0
    qos: int
    dup: bool
    retain: bool


class BufferedSocket:
    """paho reads each packet with several tiny recv() calls (type, length, body); this serves
    them from one 256 KiB read, which cut the agent's recv syscalls by about 3 per message.

    Over TLS it also keeps the last TLS error (a broker's alert arrives on a read after the
    handshake, e.g. a refused client certificate under TLS 1.3), which paho only logs as a lost
    connection. Everything else (close, fileno, setblocking) goes to the real socket.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._tls = sock if isinstance(sock, ssl.SSLSocket) else None
        self._data = b""
        self._offset = 0
        self._failure: OSError | None = None
        self.tls_error: ssl.SSLError | None = None

    def recv(self, size: int) -> bytes:
        if self._failure is not None:  # met by `fill()`: paho hears of it now
            failure, self._failure = self._failure, None
            raise failure
        if self._offset >= len(self._data):
            try:
                data = self._sock.recv(262144)  # BlockingIOError when nothing is there: AGAIN
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise  # paho turns these into "try again"
            except ssl.SSLError as exc:
                self.tls_error = exc
                raise
            if not data:
                return b""  # the broker closed the connection
            self._data, self._offset = data, 0
        chunk = self._data[self._offset : self._offset + size]
        self._offset += len(chunk)
        return chunk

    def send(self, buffer: bytes | bytearray) -> int:
        try:
            return self._sock.send(buffer)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            self.tls_error = exc
            raise

    def fill(self) -> bool:
        """Read what the socket holds into the empty buffer; False when it held nothing.

        True also when the socket is closed or failed: paho's next read meets that (an empty
        read, or the error kept here) and reports the loss as it always does.
        """
        if self._offset < len(self._data) or self._failure is not None:
            return True
        try:
            data = self._sock.recv(262144)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except OSError as exc:
            if isinstance(exc, ssl.SSLError):
                self.tls_error = exc
            self._failure = exc
            return True
        self._data, self._offset = data, 0
        return True  # an empty read: the broker closed the connection, paho reads it again

    def take_publish(self, v5: bool) -> Publish | None:
        """The next packet, when it is a whole PUBLISH of QoS 0 or 1 without properties already
        in the buffer: taken off it and returned. Anything else (another packet type, QoS 2,
        MQTT 5 properties, a packet split across reads, an empty topic) stays for paho to read.

        paho's own path for one such PUBLISH costs about 30 us: a recv() call per header byte,
        a `bytearray` grown per packet, `MQTTMessage` with an `MQTTMessageInfo` and its
        `threading.Condition`, a debug log call, and a walk of its per-topic callbacks. With
        `manual_ack` paho sends nothing for QoS 0 or 1, so nothing of its state changes either.
        """
        data, offset = self._data, self._offset
        end = len(data)
        if offset + 2 > end:
            return None
        header = data[offset]
        if header & 0xF0 != 0x30 or header & 0x06 > 0x02:  # not a PUBLISH, or QoS 2 (or 3)
            return None
        # remaining length: 1 to 4 bytes, 7 bits each, low first
        length = 0
        shift = 0
        position = offset + 1
        while True:
            if position >= end or shift > 21:
                return None  # the rest has not arrived (or it is malformed: paho says so)
            byte = data[position]
            position += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
        stop = position + length
        if stop > end or length < 2:
            return None
        topic_end = position + 2 + ((data[position] << 8) | data[position + 1])
        if topic_end == position + 2:
            return None  # an empty topic: a topic alias (MQTT 5), or malformed (3.1.1)
        qos = (header & 0x06) >> 1
        mid = 0
        body = topic_end
        if qos:
            body += 2
            if body > stop:
                return None
            mid = (data[topic_end] << 8) | data[topic_end + 1]
        if v5:
            if body >= stop or data[body] != 0:
                return None  # properties (or none at all: malformed): paho parses them
            body += 1
        if body > stop:
            return None
        self._offset = stop
        return Publish(
            data[position + 2 : topic_end],
            data[body:stop],
            mid,
            qos,
            bool(header & 0x08),
            bool(header & 0x01),
        )

    def buffered(self) -> int:
        return len(self._data) - self._offset

    def pending(self) -> int:
        """Bytes readable without the socket becoming readable again: ours, and TLS records
        OpenSSL has already taken off the socket."""
        ours = len(self._data) - self._offset  # asked once a message: no calls for it
        return ours if self._tls is None else ours + self._tls.pending()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class ClosingSSLSocket(ssl.SSLSocket):
    """An SSLSocket that closes itself when its handshake fails."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def pending_bytes(sock: object) -> int:
    return sock.pending() if isinstance(sock, BufferedSocket) else 0
