"""Receive times that never put two messages of one topic in one millisecond.

A reading without a device time takes the gateway's receive time, and a point's key in the store
is (series, timestamp in ms): two readings of one device in one ms are one point (VictoriaMetrics
deduplicates, InfluxDB overwrites), and a message is lost without a word. A session's backlog is
read at a few microseconds a message, so 250 devices' messages fit in one ms (the redelivery
fault tests stored 9,210-9,643 of 10,000). Stamped here, in the order the session reads, by
topic (a device's topic names it): one ms past the topic's last stamp when it would share it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from edge.model import epoch_ms

_ONE_MS = timedelta(milliseconds=1)


class ReceiveTimes:
    """One session's receive times, in the order it reads; keeps only the topics seen since
    the clock last passed every stamp given (a few hundred at most in a burst)."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}  # topic -> ms of its last stamp
        self._latest = 0  # the latest ms stamped

    def stamp(self, topic: str, now: datetime) -> datetime:
        """`now`, or one ms past the topic's last stamp when `now` would not be later."""
        ms = epoch_ms(now)
        last = self._last
        if ms > self._latest:
            last.clear()  # every stamp given is in the past: none can be shared
            self._latest = ms
        previous = last.get(topic)
        if previous is not None and ms <= previous:
            now += (previous + 1 - ms) * _ONE_MS
            ms = previous + 1
            if ms > self._latest:
                self._latest = ms
        last[topic] = ms
        return now
