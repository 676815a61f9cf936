"""The console's refusals as pages: what was not found (an alert, an incident, a device, a
household or a page, named by its id), inside the usual menu and user bar when someone is signed
in, so the way back is where it always is.
"""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import Request
from fastapi.responses import Response

from gateway.console.access import SignInRequired, Visitor, visitor_of
from gateway.console.page import render

# the first path segment under /console/ -> the words naming what it shows
_KINDS = {
    "alerts": "not_found_alert",
    "incidents": "not_found_incident",
    "devices": "not_found_device",
    "households": "not_found_household",
}


def _visitor(request: Request) -> Visitor | None:
    """The signed-in person, for the menu and user bar; None for a stranger (no page of theirs)."""
    try:
        return visitor_of(request)
    except SignInRequired:
        return None


def _what(path: str) -> tuple[str, dict[str, str]]:
    parts = [unquote(p) for p in path.removeprefix("/console/").split("/") if p]
    if len(parts) >= 2 and parts[0] in _KINDS:
        return _KINDS[parts[0]], {"id": "/".join(parts[1:])[:200]}
    if len(parts) >= 3 and parts[0] == "care" and parts[1] in _KINDS:
        return _KINDS[parts[1]], {"id": "/".join(parts[2:])[:200]}
    return "not_found_page", {"id": path[:200]}


def refusal_page(request: Request, status_code: int) -> Response:
    """The 403 or 404 page for this request."""
    visitor = _visitor(request)
    args: dict[str, str] = {}
    if status_code == 403:
        key = "read_only"
    elif status_code == 404:
        key, args = _what(request.url.path)
    else:
        key = "not_found"
    context = {"message_key": key, "message_args": args, "visitor": visitor}
    return render(request, "message.html", context, status_code=status_code)
