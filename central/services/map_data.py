"""What the console's map shows: every camera (where it is, whether it is healthy) and the open
reports, with a label per ward placed at the middle of what is in it.

A camera's place is the one its commissioned configuration gives (`camera.location` in the scene
version its node uploaded), else the place of its newest report that has coordinates. Wards come
with no boundaries (an operations center without a tile server has no shapes either): the label sits
at the centroid of the ward's cameras and reports, which is where an operator looks for them.
"""

from __future__ import annotations

from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.config import CentralConfig
from central.db import ReportRow, utcnow
from central.services.dashboard import CLOSED
from central.services.health import configured_health
from central.services.scenes import newest_yaml

MAX_REPORTS = 2000  # newest open reports on the map; the list page has the rest


def _configured_places(s: Session) -> dict[tuple[str, str], dict[str, Any]]:
    """(node, camera) -> {name, lat, lon, ward, address} from each camera's newest scene version."""
    rows = newest_yaml(s)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for node, camera, text in rows:
        try:
            # Validated by edge.config when it was stored; only plain YAML data here.
            cam = (yaml.safe_load(text) or {}).get("camera") or {}
        except yaml.YAMLError:
            continue
        loc = cam.get("location") or {}
        if isinstance(loc.get("lat"), (int, float)) and isinstance(loc.get("lon"), (int, float)):
            out[(node, camera)] = {
                "name": cam.get("name"),
                "lat": float(loc["lat"]),
                "lon": float(loc["lon"]),
                "ward": loc.get("ward"),
                "address": loc.get("address"),
            }
    return out


def _reported_places(s: Session) -> dict[tuple[str, str], dict[str, Any]]:
    """(node, camera) -> the place of its newest report with coordinates."""
    newest = (
        select(func.max(ReportRow.id).label("id"))
        .where(ReportRow.lat.is_not(None), ReportRow.lon.is_not(None))
        .group_by(ReportRow.node, ReportRow.camera)
        .subquery()
    )
    rows = s.execute(
        select(ReportRow.node, ReportRow.camera, ReportRow.lat, ReportRow.lon, ReportRow.ward, ReportRow.address).join(
            newest, ReportRow.id == newest.c.id
        )
    ).all()
    return {(n, c): {"name": None, "lat": lat, "lon": lon, "ward": w, "address": a} for n, c, lat, lon, w, a in rows}


def map_data(s: Session, config: CentralConfig) -> dict[str, Any]:
    places = _reported_places(s) | _configured_places(s)
    health = {(c["node"], c["camera"]): c for c in configured_health(s, config)["cameras"]}
    cameras = []
    for key in sorted(set(places) | set(health)):
        place = places.get(key)
        if place is None:
            continue  # no coordinates anywhere yet: it is on the health page, not on the map
        h = health.get(key, {})
        cameras.append(
            {
                "node": key[0],
                "camera": key[1],
                **place,
                "state": h.get("state", "unknown"),
                "healthy": h.get("state") == "streaming" and not h.get("alarm"),
                "camera_moved": bool(h.get("camera_moved")),
                "url": f"/scenes/{key[0]}/{key[1]}",
            }
        )
    now = utcnow()
    rows = s.scalars(
        select(ReportRow)
        .where(ReportRow.status.not_in(CLOSED), ReportRow.lat.is_not(None), ReportRow.lon.is_not(None))
        .order_by(ReportRow.id.desc())
        .limit(MAX_REPORTS)
    ).all()
    reports = [
        {
            "id": r.id,
            "type": r.type,
            "category": r.category,
            "title_vi": r.title_vi,
            "title_en": r.title_en,
            "status": r.status,
            "ward": r.ward,
            "lat": r.lat,
            "lon": r.lon,
            "overdue": r.deadline_at is not None and r.deadline_at < now,
            "url": f"/reports/{r.id}",
        }
        for r in rows
    ]
    wards: dict[str, list[tuple[float, float]]] = {}
    for item in [*cameras, *reports]:
        if item.get("ward"):
            wards.setdefault(str(item["ward"]), []).append((float(item["lat"]), float(item["lon"])))
    return {
        "cameras": cameras,
        "reports": reports,
        "wards": [
            {
                "name": name,
                "lat": sum(p[0] for p in pts) / len(pts),
                "lon": sum(p[1] for p in pts) / len(pts),
                "open_reports": sum(1 for r in reports if r["ward"] == name),
            }
            for name, pts in sorted(wards.items())
        ],
        "truncated": len(reports) == MAX_REPORTS,
    }
