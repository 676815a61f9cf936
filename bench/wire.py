"""A lean MQTT 5 publisher on a plain socket: QoS 1 PUBLISH out, PUBACK in, nothing else.

The load generator shares the bench machine's cores with the agent, so it must cost little: a
paho publisher spends about as much CPU per message as the agent's own MQTT reading does. This
one writes pre-encoded packets in batches of up to the broker's receive maximum and parses the
PUBACKs in bulk. It is load-generating tooling only; the agent and the raw consumer use paho.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Sequence

from bench.traffic import Message

_CONNECT, _CONNACK, _PUBACK, _DISCONNECT = 0x10, 0x20, 0x40, 0xE0
_PUBLISH_QOS1 = 0x32
_RECEIVE_MAXIMUM = 0x21  # CONNACK property: how many QoS 1 messages may be unacknowledged
_TIMEOUT_S = 60.0

Packet = tuple[bytes, bytes]  # a PUBLISH before and after its packet id


class WireError(RuntimeError):
    """The broker refused, disconnected or went silent."""


def remaining_length(value: int) -> bytes:
    """MQTT's variable byte integer: 7 bits a byte, low first (a packet's remaining length)."""
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def encode(message: Message) -> Packet:
    """A QoS 1 PUBLISH of `message`, split where its packet id goes (no properties)."""
    topic, payload = message
    name = _utf8(topic)
    length = len(name) + 2 + 1 + len(payload)  # topic, packet id, properties length, payload
    return bytes([_PUBLISH_QOS1]) + remaining_length(length) + name, b"\x00" + payload


class Publisher:
    """One MQTT 5 connection (clean start, no keep-alive) publishing QoS 1."""

    def __init__(self, host: str, port: int, client_id: str, window: int) -> None:
        self._sock = socket.create_connection((host, port), timeout=_TIMEOUT_S)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._input = bytearray()
        self._in_flight: set[int] = set()
        self._next_id = 0
        self.acked = 0
        self.refused = 0
        # protocol "MQTT", level 5, clean start, keep-alive 0 (off), no properties
        body = _utf8("MQTT") + b"\x05\x02\x00\x00\x00" + _utf8(client_id)
        self._sock.sendall(bytes([_CONNECT]) + remaining_length(len(body)) + body)
        self.window = min(window, self._connack())

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def _connack(self) -> int:
        """Wait for CONNACK; returns the broker's receive maximum."""
        while True:
            for kind, body in self._packets(block=True):
                if kind == _CONNACK:
                    if body[1] != 0:
                        raise WireError(f"broker refused the connection: reason {body[1]:#x}")
                    return _receive_maximum(body)
                if kind == _DISCONNECT:
                    raise WireError(f"broker disconnected: {body[:1].hex() or 'no reason'}")

    def send(self, packets: Sequence[Packet]) -> None:
        """Publish `packets` (at most `window - in_flight` of them)."""
        chunks: list[bytes] = []
        for head, tail in packets:
            self._next_id = self._next_id % 65535 + 1
            while self._next_id in self._in_flight:  # never reuse an unacknowledged id
                self._next_id = self._next_id % 65535 + 1
            self._in_flight.add(self._next_id)
            chunks += (head, self._next_id.to_bytes(2, "big"), tail)
        self._sock.sendall(b"".join(chunks))

    def receive(self, block: bool) -> None:
        """Take in the PUBACKs that arrived (waiting for some when `block`)."""
        for kind, body in self._packets(block):
            if kind == _PUBACK:
                self._in_flight.discard(int.from_bytes(body[:2], "big"))
                reason = body[2] if len(body) > 2 else 0
                if reason >= 0x80:
                    self.refused += 1
                else:  # 0x10 "no matching subscribers" is a success
                    self.acked += 1
            elif kind == _DISCONNECT:
                raise WireError(f"broker disconnected: reason {body[:1].hex() or '00'}")

    def drain(self) -> None:
        """Wait until every message is acknowledged."""
        while self._in_flight:
            self.receive(block=True)

    def _packets(self, block: bool) -> list[tuple[int, bytes]]:
        timeout = _TIMEOUT_S if block else 0.0
        readable, _, _ = select.select([self._sock], [], [], timeout)
        if not readable:
            if block:
                raise WireError(f"nothing from the broker in {_TIMEOUT_S:.0f} s")
            return []
        data = self._sock.recv(1 << 16)
        if not data:
            raise WireError("the broker closed the connection")
        self._input += data
        packets: list[tuple[int, bytes]] = []
        while True:
            parsed = _parse(self._input)
            if parsed is None:
                return packets
            kind, body, used = parsed
            del self._input[:used]
            packets.append((kind, body))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendall(bytes([_DISCONNECT, 0]))
        self._sock.close()


def _parse(data: bytearray) -> tuple[int, bytes, int] | None:
    """(packet type, body, bytes used) of the first whole packet in `data`, or None."""
    length, shift, index = 0, 0, 1
    while True:
        if index >= len(data):
            return None
        byte = data[index]
        length += (byte & 0x7F) << shift
        shift += 7
        index += 1
        if not byte & 0x80:
            break
    if len(data) < index + length:
        return None
    return data[0] & 0xF0, bytes(data[index : index + length]), index + length


def _receive_maximum(connack: bytes) -> int:
    """The Receive Maximum property of a CONNACK body (65535 when absent)."""
    index, length, shift = 2, 0, 0
    while index < len(connack):  # the properties length, a variable byte integer
        byte = connack[index]
        length += (byte & 0x7F) << shift
        shift += 7
        index += 1
        if not byte & 0x80:
            break
    end = index + length
    while index < end:
        prop = connack[index]
        index += 1
        if prop == _RECEIVE_MAXIMUM:
            return int.from_bytes(connack[index : index + 2], "big")
        index += _property_size(prop, connack, index)
    return 65535


def _property_size(prop: int, data: bytes, index: int) -> int:
    """Bytes taken by the value of CONNACK property `prop` starting at `index`."""
    if prop in (0x24, 0x25, 0x28, 0x29, 0x2A):  # one-byte values
        return 1
    if prop in (0x13, 0x21, 0x22):  # two-byte integers
        return 2
    if prop in (0x11, 0x27):  # four-byte integers
        return 4
    if prop == 0x26:  # user property: two strings
        first = 2 + int.from_bytes(data[index : index + 2], "big")
        return first + 2 + int.from_bytes(data[index + first : index + first + 2], "big")
    # strings and binary data: assigned client id, reason string, response info, ...
    return 2 + int.from_bytes(data[index : index + 2], "big")
