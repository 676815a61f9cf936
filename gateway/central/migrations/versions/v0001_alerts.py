"""alerts and alert_events

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("community", sa.String(200), nullable=False),
        sa.Column("building", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(200), nullable=True),
        sa.Column("device_id", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_rank", sa.Integer, nullable=False),
        sa.Column("opened_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("acknowledged_ms", sa.BigInteger, nullable=True),
        sa.Column("resolved_ms", sa.BigInteger, nullable=True),
        sa.Column("gateway", sa.String(100), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("alerts_by_community_opened", "alerts", ["community", "opened_ms", "id"])
    op.create_index("alerts_by_opened", "alerts", ["opened_ms", "id"])
    op.create_index("alerts_by_community_status", "alerts", ["community", "status", "severity"])
    op.create_table(
        "alert_events",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("alert_id", sa.String(200), nullable=False),
        sa.Column("community", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("gateway", sa.String(100), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("alert_events_by_alert", "alert_events", ["alert_id", "at_ms"])


def downgrade() -> None:
    op.drop_table("alert_events")
    op.drop_table("alerts")
