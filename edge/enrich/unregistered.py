"""Unregistered devices and unknown topics: what an installer still has to register.

Every such message is also a dead letter (kept, never dropped); this is the summary by topic, with
first and last time, a count and one sample payload, bounded so a misconfigured fleet cannot grow
it without limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

MAX_TOPICS = 10_000  # beyond this, messages on new topics are only counted (they stay dead letters)
SAMPLE_BYTES = 512  # enough of a payload to recognise the model, little of anything else


@dataclass(slots=True)
class Unregistered:
    """One topic whose messages could not be placed."""

    topic: str
    cause: str  # unknown_topic (no profile claims it) or unknown_device (not in the registry)
    model: str | None  # the profile that claimed the topic, for unknown devices
    device_id: str | None
    first_seen: datetime
    last_seen: datetime
    count: int
    sample: bytes
    detail: str


class UnregisteredLog:
    """Topics of messages that no profile claimed or whose device is not registered."""

    def __init__(self, max_topics: int = MAX_TOPICS) -> None:
        self._max = max_topics
        self._by_topic: dict[str, Unregistered] = {}
        self.overflow = 0  # messages on topics beyond the bound

    def __len__(self) -> int:
        return len(self._by_topic)

    def record(
        self,
        topic: str,
        cause: str,
        payload: bytes,
        at: datetime,
        detail: str,
        model: str | None = None,
        device_id: str | None = None,
    ) -> None:
        entry = self._by_topic.get(topic)
        if entry is not None:
            entry.count += 1
            entry.last_seen = at
            entry.sample = payload[:SAMPLE_BYTES]
            entry.cause, entry.detail, entry.model = cause, detail, model
            return
        if len(self._by_topic) >= self._max:
            self.overflow += 1
            return
        self._by_topic[topic] = Unregistered(
            topic, cause, model, device_id, at, at, 1, payload[:SAMPLE_BYTES], detail
        )

    def forget_registered(self, is_registered: Callable[[str], bool]) -> int:
        """Drop unknown devices that a reloaded registry now knows; returns how many."""
        gone = [
            topic
            for topic, entry in self._by_topic.items()
            if entry.device_id is not None and is_registered(entry.device_id)
        ]
        for topic in gone:
            del self._by_topic[topic]
        return len(gone)

    def entries(self) -> list[Unregistered]:
        """Most recently seen first."""
        return sorted(self._by_topic.values(), key=lambda e: e.last_seen, reverse=True)
