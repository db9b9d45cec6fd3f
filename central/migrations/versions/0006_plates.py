"""Plates (issue 16): a report keeps the edge's plate read (text, confidence, lines, crop) and a
normalised plate for search; the watch list of plates an admin enters, alerted to police when seen.

On PostgreSQL the normalised plate has a trigram index (pg_trgm), so a partial plate ("12345") is an
index search, not a scan of every report; where the extension cannot be created (no rights, not
shipped) a plain B-tree index still serves full plates. SQLite gets the B-tree.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def _norm(plate: str) -> str:
    # The same rule as central.db.normalize_plate, copied: a migration must not change when the code does.
    return re.sub(r"[^0-9A-Z]", "", plate.upper())


def _trigram_available(conn: sa.Connection) -> bool:
    """CREATE EXTENSION pg_trgm in a savepoint: a failure (no superuser, package missing) must not
    abort the migration's transaction."""
    try:
        with conn.begin_nested():
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        return True
    except sa.exc.DBAPIError as e:
        log.warning("pg_trgm not available (%s): plate search uses a B-tree index only", str(e).splitlines()[0])
        return False


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("plate_confidence", sa.Float(), nullable=True, comment="the edge's read of report.plate"))
        batch.add_column(sa.Column("plate_lines", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("plate_crop_sha256", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column(
                "plate_tried",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
                comment="a plate read was made (readable or not): no plate then means unreadable",
            )
        )
        batch.add_column(
            sa.Column("plate_norm", sa.String(32), nullable=True, comment="the plate upper-case, letters and digits only")
        )
        batch.add_column(sa.Column("watch_alerted_at", sa.DateTime(timezone=True), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, plate FROM reports WHERE plate IS NOT NULL")).all()
    if rows:
        conn.execute(
            sa.text("UPDATE reports SET plate_norm = :norm, plate_tried = true WHERE id = :id"),
            [{"id": rid, "norm": _norm(plate)} for rid, plate in rows],
        )
    op.create_index("ix_reports_plate_norm", "reports", ["plate_norm"])
    if conn.dialect.name == "postgresql" and _trigram_available(conn):
        op.execute("CREATE INDEX ix_reports_plate_norm_trgm ON reports USING gin (plate_norm gin_trgm_ops)")

    op.create_table(
        "watch_list",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("plate", sa.String(32), nullable=False, comment="as the admin entered it"),
        sa.Column("plate_norm", sa.String(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, comment="why: sent to police with every alert"),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(64), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_watch_list_plate_norm", "watch_list", ["plate_norm"])


def downgrade() -> None:
    op.drop_index("ix_watch_list_plate_norm", table_name="watch_list")
    op.drop_table("watch_list")
    op.execute("DROP INDEX IF EXISTS ix_reports_plate_norm_trgm")
    op.drop_index("ix_reports_plate_norm", table_name="reports")
    with op.batch_alter_table("reports") as batch:
        for col in ("watch_alerted_at", "plate_norm", "plate_tried", "plate_crop_sha256", "plate_lines", "plate_confidence"):
            batch.drop_column(col)
