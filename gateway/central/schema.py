"""The central alert store's tables (SQLAlchemy Core); migrations/ creates and evolves them.

Times are integer milliseconds since the Unix epoch (UTC), as on the gateway: exact, the same on
PostgreSQL and SQLite, and a plain integer keyset for pagination.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("community", String(200), nullable=False),
    Column("building", String(200), nullable=False),
    Column("unit", String(200), nullable=True),  # the only personal datum: masked by role
    Column("device_id", String(200), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("category", String(100), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    # (updated_ms, status_rank) orders the states of one alert: an older event never wins
    Column("status_rank", Integer, nullable=False),
    Column("opened_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("acknowledged_ms", BigInteger, nullable=True),
    Column("resolved_ms", BigInteger, nullable=True),
    Column("gateway", String(100), nullable=False),  # the edge_agent token that posted it
    Column("body", Text, nullable=False),  # the Alert as JSON
    Index("alerts_by_community_opened", "community", "opened_ms", "id"),
    Index("alerts_by_opened", "opened_ms", "id"),
    Index("alerts_by_community_status", "community", "status", "severity"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", String(200), primary_key=True),  # the event id: a replay inserts nothing
    Column("alert_id", String(200), nullable=False),
    Column("community", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Column("gateway", String(100), nullable=False),
    Column("body", Text, nullable=False),  # the AlertEvent as JSON
    Index("alert_events_by_alert", "alert_id", "at_ms"),
)
