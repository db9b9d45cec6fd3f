"""Two-tier administration and free-text search (issue 17, items 1 and 3).

Two tiers (since 2025-07-01: province -> commune/ward/special zone, no districts): reports gain
`province` and `area` (the routing table's named set of wards; NULL for reports made before, which
keep their ward and their district label); police users gain `scope` {wards, areas, districts},
carried over from `districts` (kept as legacy, so a district-scoped officer sees what they saw);
alerts gain `ward` and `area`, copied from their reports.

Search: reports.search_text, the report's address, ward, camera and
zone (ids and configured names) and plate folded to unaccented lower-case words, filled here for the
reports that exist (new ones get it at grouping time, central.search).

On PostgreSQL a trigram GIN index (pg_trgm, created by 0006 where it can be) serves the
`LIKE '%word%'` of every query word; where the extension is missing the search is a scan, as on SQLite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import yaml
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_BATCH = 5000


def _fold(text: str | None) -> str:
    # The rule of central.search.fold, copied: a migration must not change when the code does.
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return re.sub(r"[^0-9a-z]+", " ", bare).strip()


def _scene_names(conn: sa.Connection) -> dict[tuple[str, str], tuple[str | None, dict[str, str]]]:
    """(node, camera) -> (camera name, {zone id: name}) from each camera's newest scene version."""
    rows = conn.execute(
        sa.text(
            "SELECT s.node, s.camera, s.yaml FROM scene_versions s JOIN (SELECT node, camera, max(version) AS v "
            "FROM scene_versions GROUP BY node, camera) n ON s.node = n.node AND s.camera = n.camera AND s.version = n.v"
        )
    ).all()
    out: dict[tuple[str, str], tuple[str | None, dict[str, str]]] = {}
    for node, camera, text in rows:
        try:
            doc: Any = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            continue
        if not isinstance(doc, dict):
            continue
        cam = doc.get("camera") or {}
        zones = (doc.get("scene") or {}).get("zones") or []
        names = {str(z["id"]): str(z["name"]) for z in zones if isinstance(z, dict) and z.get("id") and z.get("name")}
        out[(node, camera)] = (str(cam["name"]) if isinstance(cam, dict) and cam.get("name") else None, names)
    return out


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("province", sa.Text(), nullable=True, comment="province or centrally-run city"))
        batch.add_column(sa.Column("area", sa.String(64), nullable=True, comment="routing area (a set of wards)"))
        batch.add_column(
            sa.Column(
                "search_text",
                sa.Text(),
                nullable=True,
                comment="address, ward, camera, zone, plate: unaccented lower-case words (free-text search)",
            )
        )
    op.create_index("ix_reports_ward", "reports", ["ward"])
    op.create_index("ix_reports_area", "reports", ["area"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("scope", _json, nullable=True, comment="police: {wards, areas, districts}"))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("ward", sa.Text(), nullable=True))
        batch.add_column(sa.Column("area", sa.String(64), nullable=True))
    conn = op.get_bind()
    # Every user's districts carried over as the legacy part of their scope: they see what they saw.
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(
            "UPDATE users SET scope = jsonb_build_object('wards', '[]'::jsonb, 'areas', '[]'::jsonb, "
            "'districts', coalesce(districts, '[]'::jsonb))"
        ))
    else:
        conn.execute(sa.text(
            "UPDATE users SET scope = json_object('wards', json('[]'), 'areas', json('[]'), "
            "'districts', json(coalesce(districts, '[]')))"
        ))
    conn.execute(sa.text("UPDATE alerts SET ward = (SELECT r.ward FROM reports r WHERE r.id = alerts.report_id)"))
    names = _scene_names(conn)
    last = 0
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT id, node, camera, zone_id, address, ward, district, plate, plate_norm FROM reports "
                "WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            break
        updates = []
        for rid, node, camera, zone_id, address, ward, district, plate, plate_norm in rows:
            camera_name, zones = names.get((node, camera), (None, {}))
            parts = (address, ward, district, camera, camera_name, zone_id, zones.get(zone_id or ""), plate, plate_norm)
            updates.append({"id": rid, "t": " ".join(" ".join(_fold(p) for p in parts if p).split())})
        conn.execute(sa.text("UPDATE reports SET search_text = :t WHERE id = :id"), updates)
        last = rows[-1][0]
    if conn.dialect.name == "postgresql":
        has_trgm = conn.execute(sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()
        if has_trgm:
            op.execute("CREATE INDEX ix_reports_search_text_trgm ON reports USING gin (search_text gin_trgm_ops)")
        else:
            log.warning("pg_trgm not installed (see 0006): free-text search scans the reports")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_reports_search_text_trgm")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("area")
        batch.drop_column("ward")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("scope")
    op.drop_index("ix_reports_area", table_name="reports")
    op.drop_index("ix_reports_ward", table_name="reports")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("search_text")
        batch.drop_column("area")
        batch.drop_column("province")
