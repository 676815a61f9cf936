"""The live alert stream: every subscriber gets stored events; a laggard is cut off, not waited for."""

from __future__ import annotations

from edge.alerts import AlertStream
from edge.model import AlertEvent
from tests.factories import opened_event


def _event(i: int) -> AlertEvent:
    return opened_event(i, rule="sos", category="sos")


async def test_every_subscriber_receives_each_event() -> None:
    stream = AlertStream()
    with stream.subscription() as first, stream.subscription() as second:
        stream.publish([_event(1), _event(2)])
        assert [first.get_nowait(), first.get_nowait()] == [_event(1), _event(2)]
        assert [second.get_nowait(), second.get_nowait()] == [_event(1), _event(2)]
    assert len(stream) == 0


async def test_a_subscriber_that_falls_behind_is_cut_off_and_others_go_on() -> None:
    stream = AlertStream(queue_size=10)
    with stream.subscription() as slow, stream.subscription() as fast:
        for i in range(20):
            stream.publish([_event(i)])
            fast.get_nowait()  # keeps up
        received = [slow.get_nowait() for _ in range(slow.qsize())]
        assert received[-1] is None  # the cut-off marker
        assert len(received) == 10
        assert stream.overflows == 1
        assert len(stream) == 1


async def test_close_ends_every_subscription() -> None:
    stream = AlertStream()
    with stream.subscription() as queue:
        stream.close()
        assert queue.get_nowait() is None
    with stream.subscription() as late:
        assert late.get_nowait() is None
