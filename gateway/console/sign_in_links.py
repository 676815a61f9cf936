"""One-time sign-in links: `/console/sign-in/link?code=...` signs a browser straight in as the
person a code was issued for (`community-edge demo` prints one), then the code is spent.

A code is random (192 bits), held only in the gateway's memory, good once and for a few minutes:
unlike an API token in a URL it is worthless once used or expired, so a terminal's scrollback or a
browser's history does not keep a way in.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from gateway.console.access import PREFIX
from gateway.console.page import render
from gateway.console.sessions import SESSION_COOKIE, SessionBook

_log = logging.getLogger(__name__)
LINK_TTL_S = 15 * 60.0
_MAX_CODES = 100  # unspent codes kept; issuing more drops the oldest

router = APIRouter()


@dataclass(frozen=True, slots=True)
class _Grant:
    token: str
    name: str
    expires: float  # time.monotonic()


class SignInLinks:
    """Codes that each sign one browser in once, as one person, within `ttl_s`."""

    def __init__(self, ttl_s: float = LINK_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()  # issued from the demo's thread, spent on the loop

    def issue(self, token: str, name: str) -> str:
        """A new code for the person behind `token` (`name` is what histories show)."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            while len(self._grants) >= _MAX_CODES:
                self._grants.pop(next(iter(self._grants)))
            self._grants[code] = _Grant(token, name, time.monotonic() + self.ttl_s)
        return code

    def path(self, code: str) -> str:
        return f"{PREFIX}/sign-in/link?code={code}"

    def spend(self, code: str) -> tuple[str, str] | None:
        """(token, name) once for a live code; None for one unknown, spent or expired."""
        with self._lock:
            grant = self._grants.pop(code, None)
        if grant is None or grant.expires < time.monotonic():
            return None
        return grant.token, grant.name


@router.get("/sign-in/link")
async def sign_in_by_link(request: Request, code: Annotated[str, Query(max_length=64)]) -> Response:
    """Spend the code: a session cookie and on to the board; a spent code says so."""
    links: SignInLinks = request.app.state.sign_in_links
    grant = links.spend(code)
    if grant is None:
        _log.info("console sign-in link refused: unknown, used or expired")
        return render(request, "message.html", {"message_key": "link_spent"}, status_code=410)
    token, name = grant
    book: SessionBook = request.app.state.sessions
    session = book.open(token, name)
    _log.info("console sign-in by one-time link: %s", name)
    response = RedirectResponse(f"{PREFIX}/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        max_age=int(book.ttl_s),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=PREFIX,
    )
    return response
