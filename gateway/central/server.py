"""`community-edge api`: the central alert API served over a store, migrated at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from gateway.audit import open_audit
from gateway.central.api import create_central_app
from gateway.central.database import StoreUrlError, create_store_engine, upgrade
from gateway.central.store import CentralStore
from gateway.settings import ConfigurationError, load_settings
from gateway.tokens import TokenError, open_tokens
from gateway.wiring import listen, proxy_config

_log = logging.getLogger(__name__)


def default_store(data_dir: Path) -> str:
    """The embedded default: a SQLite file in the data directory."""
    return f"sqlite:///{(data_dir / 'central.db').resolve()}"


def open_store(url: str) -> CentralStore:
    """Connect and migrate (`alembic upgrade head`); raises ConfigurationError."""
    try:
        engine = create_store_engine(url)
    except StoreUrlError as exc:
        raise ConfigurationError(str(exc)) from exc
    try:
        revision = upgrade(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise ConfigurationError(
            f"alert store {engine.url.render_as_string(hide_password=True)}: "
            f"{' '.join(str(getattr(exc, 'orig', None) or exc).split())[:300]}"
        ) from exc
    _log.info("alert store %s at revision %s", engine.url.render_as_string(), revision)
    return CentralStore(engine)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the command line owns SIGINT/SIGTERM and stops the server through `stop`


async def serve_central(
    store_url: str,
    data_dir: Path,
    host: str,
    port: int,
    stop: asyncio.Event,
    on_ready: Callable[[str], None] | None = None,
    auth_failures_per_minute: int | None = None,
    trusted_proxies: list[str] | None = None,
) -> None:
    """Migrate the store, then serve the central API until `stop` is set.

    Args:
        auth_failures_per_minute: the brake on token guessing; None: the gateway's setting
            (`api.auth_failures_per_minute`, COMMUNITY_EDGE_API__AUTH_FAILURES_PER_MINUTE).
        trusted_proxies: proxies whose X-Forwarded-For is believed; None: the gateway's setting
            (`api.trusted_proxies`, COMMUNITY_EDGE_API__TRUSTED_PROXIES='["10.0.0.5"]').
    """
    settings = load_settings()
    if auth_failures_per_minute is None or trusted_proxies is None:
        api = settings.api
        if auth_failures_per_minute is None:
            auth_failures_per_minute = api.auth_failures_per_minute
        if trusted_proxies is None:
            trusted_proxies = api.trusted_proxies
    sock = listen(host, port)  # a busy port fails before the store is touched
    try:
        store = open_store(store_url)
        try:
            tokens = open_tokens(data_dir)
        except TokenError as exc:
            raise ConfigurationError(str(exc)) from exc
    except BaseException:
        sock.close()
        raise
    audit = open_audit(data_dir)
    app = create_central_app(
        store, tokens, audit, auth_failures_per_minute, zone=settings.notifications.zone
    )
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{bound_host if ':' not in bound_host else f'[{bound_host}]'}:{bound_port}"
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        **proxy_config(trusted_proxies),
    )
    server = _Server(config)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(server.serve(sockets=[sock]), name="central-api")
            if on_ready is not None:
                on_ready(url)
            await stop.wait()
            _log.info("stopping")
            app.state.console_feed.close()  # open console streams end; else uvicorn waits on them
            server.should_exit = True
    finally:
        sock.close()
        store.close()
        tokens.close()
        audit.close()
