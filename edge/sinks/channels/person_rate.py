"""Rules of reach per person and channel: a flood must not ring one phone 500 times.

Each channel keeps, per person, the messages it addressed to them in a sliding `period_s`. Up to
`limit` go as usual; the first one over the limit is replaced by one summary ("N alerts for you
since HH:MM; single messages paused until HH:MM; every alert is on the console"); the rest of the
period addresses nobody personally (a group robot still posts them to the group, digested under
its own rate; an SMS or voice channel skips them, recorded in the delivery log). After the period
the person is reached one by one again. So one person gets at most `limit + 1` messages from one
channel in any `period_s`, whatever the flood.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum


class Admission(Enum):
    """What one more message to one person may be."""

    SEND = "send"
    SUMMARY = "summary"  # the first over the limit: one summary instead
    HOLD = "hold"  # summarised already: nothing personal until the period ends


@dataclass(frozen=True, slots=True)
class ReachSummary:
    """One summary message to one person in place of the messages a flood would have sent."""

    person: str  # person id
    alerts: int  # alerts addressed to them in the period so far, this one included
    since: datetime
    until: datetime  # when single messages resume


class PersonRate:
    """At most `limit` messages per person in any `period_s`, then one summary."""

    def __init__(self, limit: int, period_s: float, now: Callable[[], datetime]) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError("a per-person rate needs a limit of at least 1 and a period")
        self.limit = limit
        self.period = timedelta(seconds=period_s)
        self._now = now
        self._sent: dict[str, deque[datetime]] = {}
        self._held_until: dict[str, datetime] = {}
        self._counted: dict[str, int] = {}  # alerts addressed in the current period
        self.summaries = 0
        self.held = 0  # personal messages not sent (in a summary)

    def admit(self, person: str) -> tuple[Admission, ReachSummary | None]:
        now = self._now()
        held = self._held_until.get(person)
        if held is not None:
            if now < held:
                self.held += 1
                self._counted[person] = self._counted.get(person, 0) + 1
                return Admission.HOLD, None
            del self._held_until[person]
        sent = self._sent.setdefault(person, deque())
        while sent and sent[0] + self.period <= now:
            sent.popleft()
        if not sent:
            self._counted[person] = 0
        self._counted[person] = self._counted.get(person, 0) + 1
        if len(sent) < self.limit:
            sent.append(now)
            return Admission.SEND, None
        until = now + self.period
        self._held_until[person] = until
        self.summaries += 1
        self.held += 1
        return Admission.SUMMARY, ReachSummary(person, self._counted[person], sent[0], until)
