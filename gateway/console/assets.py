"""The console's static files (its CSS and script, and the vendored htmx), with cache headers and
the console's security headers. Asset URLs carry a hash of the file, so a browser keeps them for a
year and still fetches a new version the moment one ships.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/console/static"
# no inline script or style anywhere: a page can only run what this server ships
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' data:; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@cache
def _digest(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def asset_url(name: str) -> str:
    """`/console/static/<name>?v=<hash>`: the hash changes when the file does."""
    return f"{STATIC_PATH}/{name}?v={_digest(name)}"


class ConsoleStatic(StaticFiles):
    """StaticFiles with a year's caching for a hashed URL, revalidation otherwise."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            query = scope.get("query_string", b"")
            response.headers["Cache-Control"] = (
                "public, max-age=31536000, immutable" if query.startswith(b"v=") else "no-cache"
            )
        response.headers.update(SECURITY_HEADERS)
        return response


def static_files() -> ConsoleStatic:
    return ConsoleStatic(directory=STATIC_DIR)
