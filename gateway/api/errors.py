"""The one error envelope of both alert APIs (gateway and central): `{"error": {"code", "message"}}`.

Every refusal, whether a route raises it, FastAPI's routing answers it (404, 405, bad JSON) or the
body cap does (413, gateway.limits), carries the same code names, so a client handles one shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge.alerts import InvalidCursor
from edge.errors import AlertNotFound, AlertTransitionError, IncidentNotFound, SilenceNotFound

_log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",  # answered by gateway.limits.BodySizeLimit, before routing
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, str]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


# the refusals every authenticated route may answer, for the OpenAPI document
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 429)
}
ACTION_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 409: {"model": ErrorResponse}}


def error_response(status: int, message: str) -> JSONResponse:
    """The envelope for `status`, with its code name."""
    return JSONResponse(
        status_code=status,
        content={"error": {"code": CODES.get(status, "error"), "message": message}},
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = error_response(exc.status_code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        # Starlette names only the first matching route's methods; a path may have several
        # (iter_route_contexts: included routers' routes, where the app's own list has the router)
        allowed = {
            method
            for route in iter_route_contexts(request.app.routes)
            if isinstance(route.original_route, APIRoute)
            and route.path_regex.match(request.url.path)
            for method in route.methods or ()
        }
        response.headers["Allow"] = ", ".join(sorted(allowed))
    return response


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    broken = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
    if broken is not None:
        # not a body that failed its schema but one that is not JSON at all: the client's bug
        why = str(broken.get("ctx", {}).get("error", "")) or "not JSON"
        at = broken["loc"][-1] if isinstance(broken["loc"][-1], int) else None
        return error_response(
            400, f"malformed JSON: {why}" + (f" (at character {at})" if at is not None else "")
        )
    details = [
        {"where": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()
    ]
    first = details[0] if details else {"where": "request", "problem": "invalid"}
    return JSONResponse(
        status_code=422,
        content={
            "error": {
                "code": CODES[422],
                "message": f"{first['where']}: {first['problem']}",
                "details": details,
            }
        },
    )


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return error_response(404, str(exc))


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return error_response(409, str(exc))


async def _bad_cursor(request: Request, exc: Exception) -> JSONResponse:
    return error_response(400, "invalid cursor: pass back next_cursor unchanged")


async def _bug(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every refusal of `app` in the envelope; edge errors become 404 and 409 here."""
    app.add_exception_handler(StarletteHTTPException, _http_error)  # also FastAPI's own
    app.add_exception_handler(RequestValidationError, _invalid)
    for missing in (AlertNotFound, IncidentNotFound, SilenceNotFound):
        app.add_exception_handler(missing, _not_found)
    app.add_exception_handler(AlertTransitionError, _conflict)
    app.add_exception_handler(InvalidCursor, _bad_cursor)
    app.add_exception_handler(Exception, _bug)
