"""Alembic environment of the central store: runs on the connection `migrate.upgrade` passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from gateway.central.schema import metadata

connection = context.config.attributes["connection"]
if connection.dialect.name == "postgresql":
    # two API instances starting at once: one migrates, the other waits, then finds nothing to do
    connection.execute(text("SELECT pg_advisory_xact_lock(7316001)"))
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
