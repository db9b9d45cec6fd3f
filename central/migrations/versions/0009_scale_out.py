"""Central scales out (issue 19, item 4): state every web process shares, counts without a scan.

- `login_failures`: the login throttle's counters (central.web.throttle), in the database so that
  several web processes behind a proxy without sticky sessions count the same failures.
- `report_counts` + `report_count_deltas` and the triggers on `reports` that keep them
  (central.report_counts): the dashboard's and /metrics' counts by status, type, category,
  camera, ward and agency read a table of a few rows per camera instead of every report. Filled
  here from the reports that exist (one GROUP BY over them, once).
- `ix_reports_open_deadline`: a partial index of the open reports' deadlines, for the overdue count.
- `ix_reports_first_seen`, `ix_reports_camera_first_seen`: the console's since/until filters.

SQLite: alembic's batch mode rebuilds a table to alter it, which drops its triggers; a later
migration that rebuilds `reports` must call `central.report_counts.install(conn)` after it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from central import report_counts

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _dimensions(primary_key: bool) -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("status", sa.String(16), primary_key=primary_key, nullable=False),
        sa.Column("type", sa.String(64), primary_key=primary_key, nullable=False),
        sa.Column("category", sa.String(32), primary_key=primary_key, nullable=False),
        sa.Column("node", sa.String(64), primary_key=primary_key, nullable=False),
        sa.Column("camera", sa.String(64), primary_key=primary_key, nullable=False),
        sa.Column("ward", sa.Text(), primary_key=primary_key, nullable=False),
        sa.Column("agency", sa.Text(), primary_key=primary_key, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(200), primary_key=True, comment="account:<name> or address:<ip>"),
        sa.Column("first_at", sa.Float(), nullable=False, comment="unix seconds: the window's first failure"),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False, comment="unix seconds; refused before this"),
        sa.Column("expires_at", sa.Float(), nullable=False, comment="unix seconds: forgotten after this"),
    )
    op.create_index("ix_login_failures_expires_at", "login_failures", ["expires_at"])
    op.create_table(
        "report_counts",
        *_dimensions(primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        comment="reports per combination of labels (central.report_counts)",
    )
    op.create_table(
        "report_count_deltas",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        *_dimensions(primary_key=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        comment="+/- report counts written by the triggers on reports, folded into report_counts",
    )
    # The dashboard's overdue count: open reports by deadline (NULLs included). Overdue = open
    # (from the counts) minus the open ones not yet due or without a deadline, the few at the
    # index's top and bottom: no walk over a year of forwarded reports.
    open_only = sa.text("status NOT IN ('rejected', 'resolved')")
    op.create_index(
        "ix_reports_open_deadline", "reports", ["deadline_at"], postgresql_where=open_only, sqlite_where=open_only
    )
    # The console's time filters (since/until are first_seen) alone and with a camera: without
    # them a week of one camera is found by walking the newest reports back to that week, and
    # counted by reading every report.
    op.create_index("ix_reports_first_seen", "reports", ["first_seen"])
    op.create_index("ix_reports_camera_first_seen", "reports", ["camera", "first_seen"])
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        # Writers of reports wait while the counts are filled (a share lock against changes), so
        # no report is counted twice or not at all.
        conn.execute(sa.text("LOCK TABLE reports IN SHARE MODE"))
    report_counts.install(conn)
    report_counts.rebuild(conn)


def downgrade() -> None:
    report_counts.uninstall(op.get_bind())
    op.drop_index("ix_reports_camera_first_seen", table_name="reports")
    op.drop_index("ix_reports_first_seen", table_name="reports")
    op.drop_index("ix_reports_open_deadline", table_name="reports")
    op.drop_table("report_count_deltas")
    op.drop_table("report_counts")
    op.drop_index("ix_login_failures_expires_at", table_name="login_failures")
    op.drop_table("login_failures")
