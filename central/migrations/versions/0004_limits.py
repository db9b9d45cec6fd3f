"""Limits (issue 18, defects 6 and 10): events whose clock is suspect are flagged; evidence is held
until an event refers to it, and which events refer to which evidence is a table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column(
            "clock_suspect",
            sa.Boolean(),
            nullable=False,
            server_default=sa.false(),
            comment="a time of the event lies outside the sane window around its arrival",
        ),
    )
    op.add_column(
        "evidence",
        sa.Column(
            "held_until",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="set while no stored event refers to the file: removed after this time",
        ),
    )
    op.create_index("ix_evidence_held_until", "evidence", ["held_until"])
    op.create_table(
        "event_evidence",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(36), sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_event_evidence_event_id", "event_evidence", ["event_id"])
    # Events stored before 0003: their references, so evidence arriving late is still claimed.
    conn = op.get_bind()
    table = sa.table("event_evidence", sa.column("sha256"), sa.column("event_id"))
    rows: set[tuple[str, str]] = set()
    for event_id, payload in conn.execute(sa.text("SELECT id, payload FROM events")):
        data = json.loads(payload) if isinstance(payload, str) else payload
        rows |= {(e["sha256"], event_id) for e in (data or {}).get("evidence", []) if e.get("sha256")}
        if len(rows) >= 5000:
            conn.execute(table.insert(), [{"sha256": s, "event_id": i} for s, i in rows])
            rows.clear()
    if rows:
        conn.execute(table.insert(), [{"sha256": s, "event_id": i} for s, i in rows])


def downgrade() -> None:
    op.drop_index("ix_event_evidence_event_id", table_name="event_evidence")
    op.drop_table("event_evidence")
    op.drop_index("ix_evidence_held_until", table_name="evidence")
    with op.batch_alter_table("evidence") as batch:
        batch.drop_column("held_until")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("clock_suspect")
