"""The duty console as an app of its own, mounted at /console/ beside the alert API: its pages
authenticate by session cookie, not bearer token, so they live apart from the /v1 routes and
their OpenAPI document, over the same desk, authenticator and audit log.
"""

from __future__ import annotations

from datetime import tzinfo
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge.sinks import DeliveryLog
from gateway.api.security import pseudonyms_of
from gateway.audit import AuditLog
from gateway.auth import Authenticator
from gateway.console import (
    building_pages,
    care,
    device_pages,
    incident_pages,
    pages,
    reports,
    signin,
    silence_pages,
)
from gateway.console.access import CareOnly, CsrfRefused, SignInRequired, sign_in_url
from gateway.console.assets import static_files
from gateway.console.not_found import refusal_page
from gateway.console.open_alerts import OpenAlerts
from gateway.console.page import render
from gateway.console.sessions import SessionBook
from gateway.console.sign_in_links import SignInLinks
from gateway.console.sign_in_links import router as sign_in_links_router
from gateway.console.source import AlertSource
from gateway.privacy import Pseudonyms
from gateway.reading_source import ReadingSource
from gateway.tokens import TokenStore
from gateway.tsdb_readings import TsdbReadings

SESSION_TTL_S = 12 * 3600.0  # one duty shift; then sign in again
_DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")  # the gateway's settings pass the community's zone


def create_console(
    desk: AlertSource,
    authenticator: Authenticator,
    tokens: TokenStore | None,
    audit: AuditLog | None,
    deliveries: DeliveryLog | None,
    zone: tzinfo | None = None,
    pseudonyms: Pseudonyms | None = None,
    session_ttl_s: float = SESSION_TTL_S,
    acts: bool = True,
    sign_in_links: SignInLinks | None = None,
    threaded_reads: bool = False,
    readings: ReadingSource | None = None,
    tsdb: TsdbReadings | None = None,
) -> FastAPI:
    """The console app; `create_app` mounts it at /console, central mode at its own /console.

    Args:
        desk: where the alerts are: the agent's desk, or central's store (gateway.console.source).
        acts: the console acknowledges, assigns and resolves through `desk` (an AlertDesk); False
            in central mode, where alerts are read and their gateway's console acts on them.
        threaded_reads: gather the board on a worker thread (central: a database with a pool of
            its own); False for the agent's desk, whose store belongs to the event loop's thread.
        sign_in_links: one-time sign-in links (`community-edge demo` issues one); None: a book
            of its own that nobody issues from.
    """
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.state.desk = desk
    console.state.acts = acts
    console.state.threaded_reads = threaded_reads
    console.state.open_alerts = OpenAlerts()  # read once, then followed event by event
    console.state.sign_in_links = sign_in_links or SignInLinks()
    console.state.authenticator = authenticator
    console.state.tokens = tokens
    console.state.audit = audit
    console.state.deliveries = deliveries
    # the embedded store (every shard's under run --shards N); None: readings go to a tsdb
    console.state.readings = readings
    console.state.tsdb = tsdb  # that tsdb, read back for the charts (gateway.tsdb_readings)
    console.state.sessions = SessionBook(session_ttl_s)
    console.state.zone = zone or _DEFAULT_ZONE
    # the same unit pseudonyms as the API's, so a masked place reads alike on both
    console.state.pseudonyms = pseudonyms if pseudonyms is not None else pseudonyms_of(tokens)
    console.include_router(signin.router)
    console.include_router(sign_in_links_router)
    console.include_router(pages.router)
    if acts:  # the gateway's own registers (incidents, devices, buildings, silences, care and its
        # report): not central's, which reads alerts
        console.include_router(reports.router)
        console.include_router(incident_pages.router)
        console.include_router(device_pages.router)
        console.include_router(building_pages.router)
        console.include_router(silence_pages.router)
        console.include_router(care.router)
    console.mount("/static", static_files(), name="static")

    @console.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        target = sign_in_url(exc.next_path)
        if request.headers.get("hx-request"):
            # an htmx request cannot follow a redirect to a whole page: htmx navigates on this
            return Response(status_code=401, headers={"HX-Redirect": target})
        if request.method != "GET" or exc.next_path.startswith("/console/stream"):
            return Response(status_code=401)
        return RedirectResponse(target, status_code=303)

    @console.exception_handler(CareOnly)
    async def _care_only(request: Request, exc: CareOnly) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=403, headers={"HX-Redirect": care.HOME})
        if request.method != "GET" or request.url.path.startswith("/console/stream"):
            return Response(status_code=403)
        return RedirectResponse(care.HOME, status_code=303)

    @console.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return render(request, "message.html", {"message_key": "csrf"}, status_code=403)

    @console.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return refusal_page(request, exc.status_code)

    return console
