"""The session writes a PUBACK itself only while paho has nothing queued, one send() each;
whatever the socket does not take, and everything after it, goes through paho, in order."""

from __future__ import annotations

from datetime import UTC, datetime

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.clock import FakeClock
from edge.ingest.broker import parse_mqtt_url
from edge.ingest.session import Delivery, MqttSession
from edge.ingest.wire import BufferedSocket

AT = datetime(2026, 12, 1, tzinfo=UTC)


class _Socket:
    """Takes what `takes` says per send() (then everything); raises EAGAIN for a 0."""

    def __init__(self, takes: list[int]) -> None:
        self.takes = takes
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        take = self.takes.pop(0) if self.takes else len(data)
        if take == 0:
            raise BlockingIOError
        self.sent.append(bytes(data[:take]))
        return take

    def close(self) -> None:  # paho closes its socket when the client goes
        return None


def _session(takes: list[int]) -> tuple[MqttSession, paho.Client, _Socket]:
    session = MqttSession(
        parse_mqtt_url("mqtt://127.0.0.1:1"), "c", ["t/#"], lambda _: None, clock=FakeClock()
    )
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, manual_ack=True)
    # as the session's: paho then queues its output for the event loop's writer
    client.on_socket_register_write = lambda *_: None
    raw = _Socket(takes)
    sock = BufferedSocket(raw)  # type: ignore[arg-type]  # only send() is used
    client._sock = sock
    session._client = client
    session._buffered = sock
    session._generation = 1
    return session, client, raw


def _deliveries(*mids: int, qos: int = 1) -> list[Delivery]:
    return [Delivery(f"t/{mid}", b"{}", mid, qos, AT, 1) for mid in mids]


def _puback(mid: int) -> bytes:
    return bytes([0x40, 2, mid >> 8, mid & 0xFF])


def test_each_puback_is_one_send_of_its_own() -> None:
    session, client, raw = _session([])
    session.status.unacked = 3
    assert session.ack(_deliveries(1, 2, 300)) == 3
    assert raw.sent == [_puback(1), _puback(2), _puback(300)]
    assert not client._out_packet
    assert session.status.unacked == 0


def test_what_the_socket_does_not_take_goes_through_paho_in_order() -> None:
    session, client, raw = _session([4, 1, 0])
    session.status.unacked = 4
    assert session.ack(_deliveries(1, 2, 3, 4)) == 4
    # the first whole, one byte of the second: its rest and every later PUBACK queued in paho
    assert raw.sent == [_puback(1), _puback(2)[:1]]
    assert [bytes(p["packet"]) for p in client._out_packet] == [
        _puback(2)[1:],
        _puback(3),
        _puback(4),
    ]


def test_a_socket_that_takes_nothing_leaves_the_puback_to_paho() -> None:
    session, client, raw = _session([0])
    session.status.unacked = 2
    session.ack(_deliveries(7, 8))
    assert raw.sent == []
    assert [bytes(p["packet"]) for p in client._out_packet] == [_puback(7), _puback(8)]


def test_deliveries_of_an_earlier_connection_and_qos_0_are_not_acked() -> None:
    session, _, raw = _session([])
    session.status.unacked = 1
    stale = Delivery("t/9", b"{}", 9, 1, AT, 0)
    assert session.ack([stale, *_deliveries(5, qos=0), *_deliveries(6)]) == 1
    assert raw.sent == [_puback(6)]
