"""Operations center: grouped reports, routing/deadlines, audit trail, users, sessions, alerts, settings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in central.db (see 0001).
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_bigid = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_REPORT_COLUMNS: list[tuple[str, sa.types.TypeEngine, dict]] = [
    ("group_key", sa.String(200), {}),
    ("incident", sa.String(36), {}),
    ("zone_id", sa.String(64), {}),
    ("ward", sa.Text(), {}),
    ("district", sa.Text(), {}),
    ("address", sa.Text(), {}),
    ("lat", sa.Float(), {}),
    ("lon", sa.Float(), {}),
    ("first_seen", sa.DateTime(timezone=True), {}),
    ("last_seen", sa.DateTime(timezone=True), {}),
    ("event_count", sa.Integer(), {"server_default": "1", "nullable": False}),
    ("best_event_id", sa.String(36), {}),
    ("confidence", sa.Float(), {}),
    ("plate", sa.String(32), {}),
    ("priority", sa.String(16), {"server_default": "normal", "nullable": False}),
    ("agency_code", sa.String(64), {}),
    ("agency_name_vi", sa.Text(), {}),
    ("agency_name_en", sa.Text(), {}),
    ("deadline_at", sa.DateTime(timezone=True), {}),
    ("updated_at", sa.DateTime(timezone=True), {}),
    ("alerted_at", sa.DateTime(timezone=True), {}),
    ("published_at", sa.DateTime(timezone=True), {}),
    ("public_evidence", _json, {}),
]


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    for name, type_, kw in _REPORT_COLUMNS:
        op.add_column(
            "reports",
            sa.Column(name, type_, nullable=kw.get("nullable", True), server_default=kw.get("server_default")),
        )
    op.create_index("ix_reports_group_key", "reports", ["group_key"])
    op.create_index("ix_reports_incident", "reports", ["incident"])
    op.create_index("ix_reports_district", "reports", ["district"])
    # Reports made before 0002 had exactly one event: fill what the list and the queue sort on.
    op.execute(
        "UPDATE reports SET first_seen = (SELECT started_at FROM events WHERE events.id = reports.event_id), "
        "last_seen = (SELECT ended_at FROM events WHERE events.id = reports.event_id), "
        "best_event_id = event_id, updated_at = created_at"
    )

    op.create_table(
        "report_events",
        sa.Column("event_id", sa.String(36), sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("report_id", sa.Integer(), sa.ForeignKey("reports.id", ondelete="CASCADE"), nullable=False),
        sa.Column("added_at", _ts(), nullable=False),
    )
    op.create_index("ix_report_events_report_id", "report_events", ["report_id"])
    op.execute("INSERT INTO report_events (event_id, report_id, added_at) SELECT event_id, id, created_at FROM reports")

    op.create_table(
        "report_history",
        sa.Column("id", _bigid, primary_key=True, autoincrement=True),
        sa.Column("report_id", sa.Integer(), sa.ForeignKey("reports.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_report_history_report_id", "report_history", ["report_id"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text(), nullable=False, comment="argon2id (PHC string)"),
        sa.Column("role", sa.String(16), nullable=False, comment="operator | police | admin"),
        sa.Column("districts", _json, nullable=False, comment="police: the districts they see"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", _ts(), nullable=False),
    )

    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True, comment="sha256 of the cookie value"),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])

    op.create_table(
        "alerts",
        sa.Column("id", _bigid, primary_key=True, autoincrement=True),
        sa.Column("report_id", sa.Integer(), sa.ForeignKey("reports.id", ondelete="CASCADE"), nullable=False),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column("topic_district", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", _json, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("mqtt_sent_at", _ts(), nullable=True),
        sa.Column("webhooks_done_at", _ts(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_alerts_report_id", "alerts", ["report_id"])
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])

    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("settings")
    op.drop_table("alerts")
    op.drop_table("web_sessions")
    op.drop_table("users")
    op.drop_table("report_history")
    op.drop_table("report_events")
    op.drop_index("ix_reports_district", table_name="reports")
    op.drop_index("ix_reports_incident", table_name="reports")
    op.drop_index("ix_reports_group_key", table_name="reports")
    with op.batch_alter_table("reports") as batch:
        for name, _type, _kw in reversed(_REPORT_COLUMNS):
            batch.drop_column(name)
