"""`/s/<code>`: an SMS's short link, redirected to its action link's confirmation page.

The redirect changes nothing (the page it leads to changes nothing either; its button acts), so a
link preview or a scanner following it is harmless. An unknown or expired code is a plain page.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.short_links import ShortLinks

router = APIRouter(include_in_schema=False)

_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_GONE = (
    "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>"
    '<meta name=viewport content="width=device-width, initial-scale=1">'
    "<title>链接无效或已过期 · Link not valid</title></head>"
    "<body style=\"font:18px/1.5 system-ui,'Noto Sans CJK SC',sans-serif;margin:1.5rem\">"
    "<h1>链接无效或已过期</h1><p lang=en>This link is not valid or has expired.</p></body></html>"
)


@router.get("/s/{code}")
async def follow(code: str, request: Request) -> Response:
    links: ShortLinks | None = getattr(request.app.state, "short_links", None)
    token = links.token(code, datetime.now(UTC)) if links is not None else None
    if token is None:
        return HTMLResponse(_GONE, status_code=404, headers=_HEADERS)
    return RedirectResponse(f"/a/{token}", status_code=303, headers=_HEADERS)
