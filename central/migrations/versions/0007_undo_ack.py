"""Review undo window and police acknowledgement (issue 17, items 7 and 8).

- `reports.forward_after`: a person's confirmation is recorded at once, but forwarding and the
  police alert wait until this time (`review.undo_seconds`); the alert dispatcher releases due
  reports from the database, so a restart of the web process loses nothing and sends nothing twice.
- `reports.reject_reason`: the reason of the standing rejection, for lists (the audit trail keeps
  every reason); filled here from the audit trail of reports rejected before this revision.
- `alerts.acknowledged_at` / `acknowledged_by`: which police officer took the alert, and when.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(
            sa.Column(
                "forward_after",
                sa.DateTime(timezone=True),
                nullable=True,
                comment="confirmed by a person: forward and alert from this time (the undo window)",
            )
        )
        batch.add_column(sa.Column("reject_reason", sa.Text(), nullable=True))
    op.create_index("ix_reports_forward_after", "reports", ["forward_after"])
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT h.report_id, h.note FROM report_history h JOIN reports r ON r.id = h.report_id"
            " WHERE r.status = 'rejected' AND h.action = 'reject' ORDER BY h.id"
        )
    ).all()
    last = {rid: note for rid, note in rows}  # ordered by id: the latest rejection wins
    if last:
        conn.execute(
            sa.text("UPDATE reports SET reject_reason = :note WHERE id = :id"),
            [{"id": rid, "note": note} for rid, note in last.items()],
        )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("acknowledged_by")
        batch.drop_column("acknowledged_at")
    op.drop_index("ix_reports_forward_after", table_name="reports")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("reject_reason")
        batch.drop_column("forward_after")
