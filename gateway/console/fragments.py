"""Fragments: the parts of a page htmx fetches again (the board's rows, the buildings). Opened
directly (a bookmark, a link, a reload of a bare fragment) they redirect to their whole page,
which would otherwise be an unstyled scrap of HTML.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse


def whole_page_instead(request: Request, page: str) -> RedirectResponse | None:
    """A redirect to `page` (its query kept) unless htmx asked for the fragment; None if it did."""
    if request.headers.get("HX-Request") == "true":
        return None
    query = request.url.query
    return RedirectResponse(f"{page}?{query}" if query else page, status_code=303)
