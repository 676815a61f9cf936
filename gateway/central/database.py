"""The central store's database: a SQLAlchemy engine from a URL, and Alembic's `upgrade head`.

PostgreSQL through psycopg 3 (`postgresql://...` is read as `postgresql+psycopg://...`), SQLite
(`sqlite:///path`) as the embedded default. Migrations live in `gateway/central/migrations/` and
ship inside the package; `community-edge api` upgrades at start, `community-edge db upgrade` does
it alone.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreUrlError(ValueError):
    """A --store URL that names no supported database."""


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3; `sqlite:///path` stays; others refused."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    if url.startswith(("postgresql+psycopg://", "sqlite:///")):
        return url
    raise StoreUrlError(
        f"unsupported store {_shown(url)!r}: use postgresql://USER@HOST:PORT/DB or sqlite:///PATH"
    )


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


def create_store_engine(url: str, *, pool_size: int = 20) -> Engine:
    """An engine for the store at `url`; a SQLite file is created owner-only, in WAL mode."""
    normalized = normalize_url(url)
    if normalized.startswith("sqlite:///"):
        path = Path(normalized.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # unit numbers live here: owner-only from the first byte
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        engine = create_engine(
            normalized, connect_args={"timeout": 30.0, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        normalized, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    assert isinstance(dbapi_connection, sqlite3.Connection)
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=FULL")
    dbapi_connection.execute("PRAGMA busy_timeout=30000")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine) -> str:
    """Bring the store's schema to the newest revision (`alembic upgrade head`); returns it."""
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return head()


def head() -> str:
    """The newest revision that this version of the package ships."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The revision the store is at (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
