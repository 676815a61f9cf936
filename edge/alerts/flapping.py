"""Flap detection: a key (rule and device) raised and cleared too often in a window is flapping.

While a key flaps its alerts are recorded but not notified, except one notice when it starts;
it is stable again once a whole window passes without a raise or a clear.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

FLAP_TRANSITIONS = 6  # raises + clears of one key within the window: flapping
FLAP_WINDOW_S = 600.0


class FlapDetector:
    """Counts raises and clears per key over a sliding window."""

    def __init__(
        self, transitions: int = FLAP_TRANSITIONS, window_s: float = FLAP_WINDOW_S
    ) -> None:
        self.transitions = transitions  # raises + clears within the window that make a key flap
        self.window = timedelta(seconds=window_s)
        self._changes: dict[str, deque[datetime]] = {}
        self._flapping: set[str] = set()  # in a flapping spell: until a quiet window
        self._noticed: set[str] = set()  # keys whose "it is flapping" notice has gone out

    def __len__(self) -> int:
        return len(self._changes)

    def record(self, key: str, at: datetime) -> None:
        """A raise or a clear of `key` at `at`."""
        self._trim(key, at)  # first: a quiet window before this change ends a spell
        changes = self._changes.setdefault(key, deque())
        changes.append(at)
        if len(changes) >= self.transitions:
            self._flapping.add(key)

    def is_flapping(self, key: str, at: datetime) -> bool:
        if key not in self._flapping:
            return False
        self._trim(key, at)
        return key in self._flapping

    def take_notice(self, key: str) -> bool:
        """True the first time it is asked in one flapping spell: the one notice goes out then."""
        if key in self._noticed:
            return False
        self._noticed.add(key)
        return True

    def prune(self, at: datetime) -> None:
        """Forget keys quiet for a whole window (called from the periodic task)."""
        for key in list(self._changes):
            self._trim(key, at)

    def _trim(self, key: str, at: datetime) -> None:
        changes = self._changes.get(key)
        if changes is None:
            return
        while changes and at - changes[0] >= self.window:
            changes.popleft()
        if not changes:  # a whole window without a change: stable again
            del self._changes[key]
            self._flapping.discard(key)
            self._noticed.discard(key)
