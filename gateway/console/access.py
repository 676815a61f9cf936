"""Who is at the console: the session cookie to a signed-in person (their token checked again on
every request), the page's language, and the CSRF check every state change passes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import Depends, Request

from gateway.auth import ACTORS, Authenticator, Throttled, Unauthenticated
from gateway.console.catalogue import WORDS, Lang, choose
from gateway.console.sessions import SESSION_COOKIE, Session, SessionBook
from gateway.tokens import PERSONAL_ROLES, Principal, Role

PREFIX = "/console"
LANG_COOKIE = "ce_lang"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(Exception):
    """No live session: the person is sent to sign in, and back to `next` afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CareOnly(Exception):
    """A care worker or family member on a duty page: their pages are under /console/care."""


class CsrfRefused(Exception):
    """A state change without this session's CSRF token, or from another origin."""


@dataclass(frozen=True, slots=True)
class Visitor:
    """The signed-in person of one request."""

    session: Session
    principal: Principal
    lang: Lang
    acts_here: bool = True  # False in central mode: alerts are handled on their gateway

    @property
    def name(self) -> str:
        """What alert histories show for this person's actions."""
        return self.session.name

    @property
    def may_act(self) -> bool:
        return self.acts_here and self.principal.role in ACTORS

    @property
    def words(self) -> dict[str, str]:
        return WORDS[self.lang]


def language(request: Request) -> Lang:
    return choose(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def sessions_of(request: Request) -> SessionBook:
    book: SessionBook = request.app.state.sessions
    return book


def _here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def signed_in(request: Request) -> Visitor:
    """The request's person on a duty page; raises SignInRequired without a live session or a
    valid token, CareOnly for the people of the care work (their pages are /console/care)."""
    visitor = visitor_of(request)
    if visitor.principal.role in PERSONAL_ROLES:
        raise CareOnly()
    return visitor


def visitor_of(request: Request) -> Visitor:
    """The request's person, whatever the role; raises SignInRequired as `signed_in` does."""
    request.state.request_id = uuid.uuid4().hex  # for the audit log (gateway.api.security.audit)
    session = sessions_of(request).get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequired(_here(request))
    authenticator: Authenticator = request.app.state.authenticator
    client = request.client.host if request.client else "unknown"
    try:
        principal = authenticator.authenticate(session.token, client)
    except (Unauthenticated, Throttled):
        # revoked since sign-in (or this address is braked): the session ends here
        sessions_of(request).close(session.id)
        raise SignInRequired(_here(request)) from None
    if principal.role is Role.EDGE_AGENT:
        sessions_of(request).close(session.id)
        raise SignInRequired(_here(request))
    acts: bool = getattr(request.app.state, "acts", True)
    return Visitor(session, principal, language(request), acts)


Person = Annotated[Visitor, Depends(signed_in)]
Anyone = Annotated[Visitor, Depends(visitor_of)]  # the care pages: care workers and family too


async def form_of(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the body cap of gateway.limits applies)."""
    body = (await request.body()).decode(errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def check_csrf(request: Request, visitor: Visitor, form: dict[str, str]) -> None:
    """Refuse a state change that lacks this session's token (form field or header) or that a
    browser says came from another origin."""
    origin = request.headers.get("origin")
    # the host only: behind a proxy that ends TLS the app may see http where the browser said https
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise CsrfRefused(origin)
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not visitor.session.csrf_matches(given):
        raise CsrfRefused("missing or wrong token")


def safe_next(value: str | None) -> str:
    """A path inside the console to go to after sign-in; anything else (another site) is the board."""
    if not value or not value.startswith(PREFIX + "/") or value.startswith("//") or "\\" in value:
        return PREFIX + "/"
    return value


def sign_in_url(next_path: str) -> str:
    return f"{PREFIX}/sign-in?next={quote(safe_next(next_path), safe='')}"
