"""Shared fixtures: real mosquitto, VictoriaMetrics and PostgreSQL servers, and per-test topic prefixes.

A missing server binary makes the tests that need it fail (with the install command), never skip.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from tests.servers import (
    MosquittoFactory,
    MosquittoServer,
    PostgresServer,
    VictoriaMetricsFactory,
    VictoriaMetricsServer,
)

_BROKER_FIXTURES = frozenset({"mosquitto", "mosquitto_factory"})
_TSDB_FIXTURES = frozenset({"victoria_metrics", "victoria_metrics_factory"})
_DATABASE_FIXTURES = frozenset({"postgres", "postgres_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a server fixture, directly or through another fixture."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & _BROKER_FIXTURES:
            item.add_marker(pytest.mark.broker)
        if used & _TSDB_FIXTURES:
            item.add_marker(pytest.mark.tsdb)
        if used & _DATABASE_FIXTURES:
            item.add_marker(pytest.mark.database)


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[MosquittoServer]:
    """One broker for the whole session; tests keep apart by topic prefix."""
    with MosquittoServer() as server:
        yield server


@pytest.fixture(scope="session")
def victoria_metrics() -> Iterator[VictoriaMetricsServer]:
    """One VictoriaMetrics for the whole session; tests keep apart by device id."""
    with VictoriaMetricsServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One private PostgreSQL for the whole session; each test gets its own database."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A --store URL of a new, empty database of this test's own."""
    return postgres.url(postgres.create_database())


@pytest.fixture
def mosquitto_factory() -> Iterator[MosquittoFactory]:
    """Start private brokers that a fault test may kill; all are closed after the test."""
    servers: list[MosquittoServer] = []

    def start(*, persistence: bool = False, extra_config: Sequence[str] = ()) -> MosquittoServer:
        server = MosquittoServer(persistence=persistence, extra_config=extra_config)
        servers.append(server)
        server.start()
        return server

    yield start
    _close_all(servers)


@pytest.fixture
def victoria_metrics_factory() -> Iterator[VictoriaMetricsFactory]:
    """Start private VictoriaMetrics servers that a fault test may kill; all closed after."""
    servers: list[VictoriaMetricsServer] = []

    def start(*, extra_args: Sequence[str] = ()) -> VictoriaMetricsServer:
        server = VictoriaMetricsServer(extra_args=extra_args)
        servers.append(server)
        server.start()
        return server

    yield start
    _close_all(servers)


def _close_all(servers: Sequence[MosquittoServer | VictoriaMetricsServer]) -> None:
    errors: list[Exception] = []
    for server in servers:
        try:
            server.close()
        except Exception as exc:  # close the others, then report
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> str:
    """A topic prefix of this test's own, so tests sharing the broker never see each other."""
    return f"test/{request.node.name}/"
