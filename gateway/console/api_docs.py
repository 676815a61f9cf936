"""The alert API's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), from files the
package ships (gateway/console/static/vendor/) instead of FastAPI's default CDN: a gateway is
often offline, and its documentation pages were blank there.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.console.assets import asset_url

SWAGGER = "vendor/swagger-ui-5.35.0"
REDOC = "vendor/redoc-2.5.4"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=asset_url(f"{SWAGGER}/swagger-ui-bundle.js"),
        swagger_css_url=asset_url(f"{SWAGGER}/swagger-ui.css"),
        swagger_favicon_url=asset_url(f"{SWAGGER}/favicon-32x32.png"),
        oauth2_redirect_url=OAUTH2_REDIRECT,
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    page = get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=asset_url(f"{REDOC}/redoc.standalone.js"),
        redoc_favicon_url=asset_url(f"{SWAGGER}/favicon-32x32.png"),
        with_google_fonts=False,
    )
    # ReDoc's bundle hard-codes its "by Redocly" logo from its CDN: images from here only, so an
    # offline gateway's browser does not even try (the logo is hidden when it cannot load)
    page.headers["Content-Security-Policy"] = "img-src 'self' data:"
    return page


@router.get("/favicon.ico")
async def favicon() -> RedirectResponse:
    """Browsers ask for /favicon.ico on every host: the console's icon (a 404 in every log)."""
    return RedirectResponse(asset_url("favicon.svg"), status_code=301)
