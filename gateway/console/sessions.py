"""Console sign-in sessions: an API token exchanged for a random session id kept in a cookie.

The token itself stays in this process's memory, never in the cookie, and is checked again on
every request, so a revoked token ends its sessions at once. Sessions live in memory: a restart of
the gateway signs everyone out (the sign-in page says so), which is the safe side for a page that
acts on alarms. Each session carries its own CSRF token (the synchronizer-token pattern).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

SESSION_COOKIE = "ce_console"
MAX_SESSIONS = 10_000  # beyond this the longest-idle session goes: memory stays bounded


@dataclass(slots=True)
class Session:
    """One signed-in browser: whose token, the name shown in alert histories, its CSRF token."""

    id: str
    token: str
    name: str
    expires_at: float  # on the book's monotonic clock
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode(), self.csrf.encode())


class SessionBook:
    """The open sessions of one app; thread-safe, bounded, each expiring `ttl_s` after sign-in."""

    def __init__(self, ttl_s: float, now: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._now = now
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, token: str, name: str) -> Session:
        session = Session(secrets.token_urlsafe(32), token, name, self._now() + self.ttl_s)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of a cookie value; an expired one is forgotten here."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if session.expires_at <= self._now():
                del self._sessions[session_id]
                return None
            self._sessions.move_to_end(session_id)
            return session

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)
