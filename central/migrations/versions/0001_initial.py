"""Initial schema: events, dead letters, evidence, reports, node status, camera health.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in central.db: a migration must not change when the models do.
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_bigid = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(36), primary_key=True, comment="the event's UUID, made at the edge"),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("ended_at", _ts(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=True),
        sa.Column("payload", _json, nullable=False, comment="the whole event as received (contract v1)"),
        sa.Column("received_at", _ts(), nullable=False),
    )
    op.create_index("ix_events_node_camera_started", "events", ["node", "camera", "started_at"])
    op.create_index("ix_events_started_at", "events", ["started_at"])

    op.create_table(
        "dead_letters",
        sa.Column("id", _bigid, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
    )
    op.create_index("ix_dead_letters_received_at", "dead_letters", ["received_at"])

    op.create_table(
        "evidence",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.String(200), nullable=False, comment="relative to the evidence dir: <sha[:2]>/<sha>"),
        sa.Column("received_at", _ts(), nullable=False),
    )

    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("title_vi", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("description_vi", sa.Text(), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="new"),
        sa.Column("created_at", _ts(), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_reports_event_id"),
    )
    op.create_index("ix_reports_created_at", "reports", ["created_at"])

    op.create_table(
        "node_status",
        sa.Column("node", sa.String(64), primary_key=True),
        sa.Column("payload", _json, nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
    )

    op.create_table(
        "camera_health",
        sa.Column("node", sa.String(64), primary_key=True),
        sa.Column("camera", sa.String(64), primary_key=True),
        sa.Column("payload", _json, nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("camera_health")
    op.drop_table("node_status")
    op.drop_index("ix_reports_created_at", table_name="reports")
    op.drop_table("reports")
    op.drop_table("evidence")
    op.drop_index("ix_dead_letters_received_at", table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_index("ix_events_started_at", table_name="events")
    op.drop_index("ix_events_node_camera_started", table_name="events")
    op.drop_table("events")
