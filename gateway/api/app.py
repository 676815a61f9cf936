"""The gateway's alert API (versioned under /v1): the app, assembled from a router per resource
group over the agent's desk (edge.agent.Desk).
"""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING

from fastapi import FastAPI

from edge.agent import Agent, Desk
from edge.sinks import DeliveryLog, ReadingStore
from gateway.action_links import ActionLinks
from gateway.api import (
    actions,
    alerts,
    care,
    devices,
    households,
    operations,
    provider_callbacks,
    reports,
    short_links,
    silences,
)
from gateway.api import readings as reading_routes
from gateway.api.errors import install_error_handlers
from gateway.api.security import pseudonyms_of
from gateway.audit import AuditLog
from gateway.auth import Authenticator
from gateway.disk import DiskWatch
from gateway.limits import MAX_BODY_BYTES, AuthFailureLimiter, BodySizeLimit
from gateway.metrics import render_metrics
from gateway.reading_source import ReadingSource, reading_source
from gateway.retention import Retention
from gateway.tokens import TokenStore
from gateway.tsdb_readings import TsdbReadings

if TYPE_CHECKING:  # the console imports this package's security helpers: no import at run time
    from gateway.console.sign_in_links import SignInLinks


def create_app(
    agent: Agent,
    token: str,
    readings: ReadingStore | ReadingSource | None = None,
    deliveries: DeliveryLog | None = None,
    tokens: TokenStore | None = None,
    audit: AuditLog | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    auth_failures_per_minute: int = 10,
    action_links: ActionLinks | None = None,
    disk: DiskWatch | None = None,
    retention: Retention | None = None,
    zone: tzinfo | None = None,
    sign_in_links: SignInLinks | None = None,
    tsdb: TsdbReadings | None = None,
    desk: Desk | None = None,
) -> FastAPI:
    """The FastAPI app over a running (or at least entered) agent.

    Args:
        token: the bootstrap token (an admin of every community).
        tokens: scoped tokens (`community-edge tokens`); None: the bootstrap token only.
        audit: where alert actions, personal-data reads and refused cross-tenant attempts go.
        action_links: signed one-time links (`/a/<token>`); None: such links are refused.
        disk: the data dir's size and free space (/metrics, a warning on /healthz).
        retention: what retention has deleted (/metrics).
        zone: the community's time zone, for the console's times (None: Asia/Shanghai).
        sign_in_links: the console's one-time sign-in links (the demo prints one).
        tsdb: where the console reads readings back when they go to a time-series server.
        desk: what the API and console read and do (None: `Desk(agent)`; `run --shards`: shard
            0's desk over every shard, gateway.shard_desk).
    """
    app = FastAPI(
        title="community-edge alert API",
        version="1",
        description="Alerts from a community gateway. Every /v1 route needs `Authorization: Bearer <token>`.",
        # /docs and /redoc come from files the package ships (gateway.console.api_docs), not a CDN
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    install_error_handlers(app)
    app.state.authenticator = Authenticator(
        token, tokens, AuthFailureLimiter(max_failures=auth_failures_per_minute)
    )
    app.state.desk = desk if desk is not None else Desk(agent)
    app.state.readings = reading_source(readings)
    app.state.deliveries = deliveries
    app.state.audit = audit
    # the gateway's own stores that start empty when their file is unreadable (`.problem`), for
    # /healthz; wiring adds the phone book and the short links when phone channels are set
    app.state.stores = [store for store in (audit, deliveries) if store is not None]
    app.state.action_links = action_links
    app.state.pseudonyms = pseudonyms_of(tokens)
    app.state.tokens = tokens  # the names of tokens (who recorded a visit)
    app.state.zone = zone  # None: Asia/Shanghai (months of visits begin at its midnight)
    # the metrics read every stage's counters: the one view past the desk, rendered by gateway.metrics
    app.state.disk = disk
    app.state.render_metrics = lambda: render_metrics(agent, disk, retention)
    app.include_router(operations.router)
    app.include_router(alerts.router)
    app.include_router(silences.router)
    app.include_router(devices.router)
    app.include_router(care.router)
    app.include_router(reports.router)
    app.include_router(households.router)
    app.include_router(reading_routes.router)
    app.include_router(actions.router)
    # SMS short links and the SMS / voice providers' callbacks; wiring sets their state
    app.state.short_links = None
    app.state.phone_callbacks = None
    app.include_router(short_links.router)
    app.include_router(provider_callbacks.router)
    # the duty console: cookie sessions over the same desk, authenticator and audit log; imported
    # here because the console's pages use this package's security helpers (a cycle at import)
    from gateway.console import api_docs, create_console

    app.include_router(api_docs.router)
    app.mount(
        "/console",
        create_console(
            app.state.desk,
            app.state.authenticator,
            tokens,
            audit,
            deliveries,
            zone,
            app.state.pseudonyms,
            sign_in_links=sign_in_links,
            readings=app.state.readings,
            tsdb=tsdb,
        ),
    )
    return app
