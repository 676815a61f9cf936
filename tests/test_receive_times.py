"""Receive times: two messages of one topic never share a millisecond, in the order read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.ingest.receive_times import ReceiveTimes
from edge.model import epoch_ms

NOW = datetime(2026, 12, 6, 6, 0, 0, 700, tzinfo=UTC)
US = timedelta(microseconds=1)


def test_a_topics_messages_in_one_millisecond_get_one_each() -> None:
    # a session's backlog is read a few us a message: one device's messages share a ms
    times = ReceiveTimes()
    stamped = [
        (topic, epoch_ms(times.stamp(topic, NOW + n * US)))
        for n in range(3)
        for topic in ("door/1", "door/2")
    ]
    start = epoch_ms(NOW)
    assert stamped == [
        ("door/1", start),
        ("door/2", start),
        ("door/1", start + 1),
        ("door/2", start + 1),
        ("door/1", start + 2),
        ("door/2", start + 2),
    ]


def test_a_stamp_keeps_the_time_when_it_is_later_and_moves_it_as_little_as_needed() -> None:
    times = ReceiveTimes()
    assert times.stamp("door/1", NOW) == NOW
    assert times.stamp("door/1", NOW + US) == NOW + US + timedelta(milliseconds=1)
    later = NOW + timedelta(milliseconds=10)
    # once the clock has passed every stamp given, a topic keeps its own time
    assert times.stamp("door/1", later) == later
    assert times.stamp("door/2", later) == later
