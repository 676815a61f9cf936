"""Signing in and out of the console, and the language switch.

A person exchanges their API token for a session cookie (HttpOnly, SameSite=Strict, Secure behind
https). The sign-in form itself is protected by a double-submit token (a cookie and a field that
must match), so another site cannot sign a browser in under someone else's token.
"""

from __future__ import annotations

import logging
import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from gateway.auth import BOOTSTRAP_ID, Authenticator, Throttled, Unauthenticated
from gateway.console.access import (
    LANG_COOKIE,
    PREFIX,
    SignInRequired,
    check_csrf,
    form_of,
    safe_next,
    visitor_of,
)
from gateway.console.catalogue import LANGS
from gateway.console.page import render
from gateway.console.sessions import SESSION_COOKIE, SessionBook
from gateway.tokens import Principal, Role, TokenStore

_log = logging.getLogger(__name__)
_SIGNIN_COOKIE = "ce_signin"  # the double-submit half of the sign-in form's CSRF token

router = APIRouter()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _form(request: Request, next_path: str, error: str | None, status: int = 200) -> Response:
    token = request.cookies.get(_SIGNIN_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "sign_in.html",
        {"next": next_path, "signin_csrf": token, "error": error},
        status_code=status,
    )
    response.set_cookie(
        _SIGNIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path=PREFIX,
    )
    return response


@router.get("/sign-in")
async def sign_in_page(
    request: Request,
    next_path: Annotated[str | None, Query(alias="next")] = None,
    retry: int = 0,
) -> Response:
    """The sign-in form; straight on to `next` when this browser is already signed in."""
    target = safe_next(next_path)
    try:
        visitor_of(request)
    except SignInRequired:
        pass
    else:
        return RedirectResponse(target, status_code=303)
    if request.headers.get("sec-fetch-site") == "cross-site" and not retry:
        # arriving from a link in a chat app: a SameSite=Strict cookie is not sent on this
        # navigation, so load once more from our own origin, where it is
        return render(request, "bounce.html", {"next": target})
    return _form(request, target, None)


def _name_of(tokens: TokenStore | None, principal: Principal) -> str:
    """The token's name (what histories show); its id when it has none."""
    if principal.token_id == BOOTSTRAP_ID:
        return "admin"
    if tokens is not None:
        for info in tokens.list():
            if info.id == principal.token_id and info.name:
                return info.name
    return principal.token_id


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await form_of(request)
    target = safe_next(form.get("next"))
    expected = request.cookies.get(_SIGNIN_COOKIE)
    given = form.get("signin_csrf", "")
    if not expected or not secrets.compare_digest(expected.encode(), given.encode()):
        return render(request, "message.html", {"message_key": "csrf"}, status_code=403)
    authenticator: Authenticator = request.app.state.authenticator
    client = request.client.host if request.client else "unknown"
    token = form.get("token", "").strip()
    try:
        principal = authenticator.authenticate(token or None, client)
    except Throttled as exc:
        return _form(request, target, f"throttled:{math.ceil(exc.retry_after_s)}", 429)
    except Unauthenticated:
        return _form(request, target, "bad_token", 401)
    if principal.role is Role.EDGE_AGENT:
        return _form(request, target, "edge_agent_refused", 403)
    book: SessionBook = request.app.state.sessions
    session = book.open(token, _name_of(request.app.state.tokens, principal))
    _log.info("console sign-in: token %s (%s)", principal.token_id, principal.role)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        max_age=int(book.ttl_s),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path=PREFIX,
    )
    response.delete_cookie(_SIGNIN_COOKIE, path=PREFIX)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    visitor = visitor_of(request)  # every role signs out, care workers and family too
    check_csrf(request, visitor, await form_of(request))
    book: SessionBook = request.app.state.sessions
    book.close(visitor.session.id)
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@router.get("/lang")
async def switch_language(
    request: Request, to: str, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """The language switch: a cookie for a year (it holds no secret)."""
    response = RedirectResponse(safe_next(next_path), status_code=303)
    if to in LANGS:
        response.set_cookie(
            LANG_COOKIE, to, max_age=365 * 86400, samesite="lax", path=PREFIX, httponly=True
        )
    return response
