"""The PUBLISH fast path: what `BufferedSocket.take_publish` takes is what paho would decode."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import paho.mqtt._packet as packet_module
import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.wire import remaining_length
from edge.ingest.wire import BufferedSocket, Publish


def _publish(
    topic: bytes,
    payload: bytes,
    *,
    qos: int = 1,
    mid: int = 7,
    v5: bool = True,
    properties: bytes = b"\x00",
    dup: bool = False,
    retain: bool = False,
) -> bytes:
    variable = struct.pack("!H", len(topic)) + topic
    if qos:
        variable += struct.pack("!H", mid)
    if v5:
        variable += properties
    body = variable + payload
    header = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    return bytes([header]) + remaining_length(len(body)) + body


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, BufferedSocket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield theirs, BufferedSocket(ours)
    ours.close()
    theirs.close()


def _fill(pair: tuple[socket.socket, BufferedSocket], data: bytes) -> BufferedSocket:
    theirs, buffered = pair
    theirs.sendall(data)
    buffered.recv(0)  # one read of what arrived into the buffer, nothing taken
    return buffered


@pytest.mark.parametrize("v5", [True, False])
@pytest.mark.parametrize("qos", [0, 1])
def test_a_plain_publish_is_taken_as_paho_decodes_it(
    pair: tuple[socket.socket, BufferedSocket], v5: bool, qos: int
) -> None:
    payload = b'{"co2": 812, "t": 215}' * 20  # over 127 bytes: a two-byte remaining length
    packet = _publish(b"sc/c1/air/d1/up", payload, qos=qos, v5=v5, dup=True, retain=True)
    buffered = _fill(pair, packet * 2)
    protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    paho = packet_module.decode_publish(packet[0], packet[3:], protocol)
    taken = buffered.take_publish(v5)
    assert taken == Publish(
        bytes(paho.topic), bytes(paho.payload), paho.mid, paho.qos, paho.dup, paho.retain
    )
    assert taken == buffered.take_publish(v5)  # the second one, right behind it
    assert buffered.take_publish(v5) is None
    assert buffered.buffered() == 0


def test_what_paho_must_read_stays_in_the_buffer(
    pair: tuple[socket.socket, BufferedSocket],
) -> None:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.MessageExpiryInterval = 30
    packed = properties.pack()  # type: ignore[no-untyped-call]
    plain = _publish(b"t/1", b"x")
    for packet in (
        _publish(b"t/1", b"x", properties=packed),  # MQTT 5 properties
        _publish(b"t/1", b"x", qos=2),
        _publish(b"", b"x", properties=b"\x03\x23\x00\x01"),  # a topic alias, no topic
        bytes([0x90, 0x03, 0x00, 0x01, 0x01]),  # SUBACK
        plain[:-1],  # the end of the packet has not arrived
        plain[:1],  # nor its remaining length
    ):
        _, buffered = pair
        buffered._data, buffered._offset = packet, 0
        assert buffered.take_publish(True) is None
        assert buffered.buffered() == len(packet)


def test_fill_reads_what_the_socket_holds_and_leaves_a_close_to_paho(
    pair: tuple[socket.socket, BufferedSocket],
) -> None:
    theirs, buffered = pair
    assert not buffered.fill()  # nothing there: the socket will wake us
    theirs.sendall(_publish(b"t/1", b"x"))
    assert buffered.fill()
    assert buffered.take_publish(True) == Publish(b"t/1", b"x", 7, 1, False, False)
    theirs.close()
    assert buffered.fill()  # closed: paho must read, and sees the end
    assert buffered.take_publish(True) is None
    assert buffered.recv(1) == b""
