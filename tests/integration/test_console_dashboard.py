"""The dashboard's and the map's numbers against what was stored, on SQLite and PostgreSQL, and
the rejection rate on /metrics: reports are made by the real message processor from real events.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine

from central.config import CentralConfig
from central.db import ReportRow, make_engine, session_scope, utcnow
from central.ingester import MessageProcessor
from central.web import create_app
from contract.topics import event_topic
from tests.services import make_event
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WARDS = {
    # ward: (lat, lon) of its camera
    "Phường Thuận Hóa": (16.4637, 107.5909),
    "Phường Phú Xuân": (16.4698, 107.5786),
}


@pytest.fixture
def center(central_database_url: str, central_users: Any, tmp_path: Any) -> Iterator[tuple[CentralConfig, Engine, MessageProcessor]]:
    # Grouping off: each event its own report (the counts below are per report).
    cfg = CentralConfig.model_validate(
        {"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev"), "reports": {"group_window_s": 0}}
    )
    engine = make_engine(cfg.database_url)
    try:
        yield cfg, engine, ingest_processor(cfg, engine)
    finally:
        engine.dispose()


def _store(processor: MessageProcessor, vtype: str, ward: str, camera: str, minutes_ago: float) -> int:
    lat, lon = WARDS[ward]
    ev = make_event(
        type=vtype,
        camera=camera,
        started_at=utcnow() - timedelta(minutes=minutes_ago),
        location={"ward": ward, "address": "Lê Lợi", "lat": lat, "lon": lon},
    )
    out = processor.process(event_topic("ioc", ev.node, ev.camera, vtype), ev.to_json().encode())
    assert out.kind == "stored" and out.report_id, out
    return out.report_id


def _set(engine: Engine, report_id: int, **values: Any) -> None:
    from central.db import make_session_factory

    with session_scope(make_session_factory(engine)) as s:
        s.execute(update(ReportRow).where(ReportRow.id == report_id).values(**values))


def test_dashboard_counts_trend_and_rejection_rates(center: Any, console_login: Any) -> None:
    cfg, engine, processor = center
    stopping = [_store(processor, "illegal_stopping", "Phường Thuận Hóa", f"cam-{i}", 10 + i * 30) for i in range(4)]
    red = _store(processor, "red_light", "Phường Phú Xuân", "cam-red", 5)
    _set(engine, stopping[0], status="rejected")
    _set(engine, stopping[1], status="confirmed")
    _set(engine, stopping[2], status="forwarded", deadline_at=utcnow() - timedelta(hours=1))
    _set(engine, red, status="rejected")
    client = TestClient(create_app(cfg, engine=engine))
    assert client.get("/api/dashboard").status_code == 401
    console_login(client, "op")
    d = client.get("/api/dashboard?days=3").json()

    assert d["total"] == 5 and d["open"] == 3 and d["overdue"] == 1
    assert {r["key"]: r["count"] for r in d["by_type"]} == {"illegal_stopping": 4, "red_light": 1}
    assert {r["key"]: r["count"] for r in d["by_ward"]} == {"Phường Thuận Hóa": 4, "Phường Phú Xuân": 1}
    assert {r["key"]: r["count"] for r in d["by_status"]} == {"rejected": 2, "confirmed": 1, "forwarded": 1, "new": 1}
    statuses = {r["key"]: r["vi"] for r in d["by_status"]}
    assert statuses["rejected"] == "Từ chối"  # people read Vietnamese labels, not ids
    by_type = {r["key"]: r for r in d["rejection_by_type"]}
    assert by_type["red_light"]["rate"] == 1.0 and by_type["red_light"]["decided"] == 1
    # Of the three stopping reports an operator decided, one was rejected; the new one does not count.
    assert (by_type["illegal_stopping"]["decided"], by_type["illegal_stopping"]["rejected"]) == (3, 1)
    assert by_type["illegal_stopping"]["rate"] == pytest.approx(0.333, abs=0.001)
    cams = {r["key"]: r["rate"] for r in d["rejection_by_camera"]}
    assert cams["node-hue-01/cam-red"] == 1.0 and cams["node-hue-01/cam-0"] == 1.0 and cams["node-hue-01/cam-1"] == 0.0
    # Trend: three local days, today last; every report was created now (created_at is arrival).
    assert len(d["trend"]["days"]) == 3
    per_category = {s["category"]: s["counts"] for s in d["trend"]["series"]}
    assert per_category["urban_order" if "urban_order" in per_category else "traffic"][-1] >= 1
    assert sum(sum(c) for c in per_category.values()) == 5 and all(c[:-1] == [0, 0] for c in per_category.values())

    page = client.get("/dashboard")
    assert page.status_code == 200 and "Tỷ lệ từ chối" in page.text and 'id="kpi-overdue">1<' in page.text
    assert "/static/vendor/chart.js-4.5.1/chart.umd.min.js" in page.text


def test_rejection_rate_is_on_metrics(center: Any) -> None:
    cfg, engine, processor = center
    a = _store(processor, "red_light", "Phường Phú Xuân", "cam-red", 5)
    b = _store(processor, "red_light", "Phường Phú Xuân", "cam-red", 60)  # outside the grouping window
    _set(engine, a, status="rejected")
    _set(engine, b, status="confirmed")
    client = TestClient(create_app(cfg, engine=engine), client=("127.0.0.1", 5000))
    text = client.get("/metrics").text
    assert 'ioc_central_rejection_rate{type="red_light"} 0.5' in text, text[-2000:]
    assert 'ioc_central_rejection_rate_by_camera{camera="node-hue-01/cam-red"} 0.5' in text


def test_map_places_cameras_reports_and_ward_labels(center: Any, console_login: Any) -> None:
    cfg, engine, processor = center
    open_id = _store(processor, "illegal_stopping", "Phường Thuận Hóa", "cam-a", 3)
    closed = _store(processor, "red_light", "Phường Phú Xuân", "cam-b", 4)
    _set(engine, closed, status="rejected")
    client = TestClient(create_app(cfg, engine=engine))
    console_login(client, "op")
    m = client.get("/api/map").json()
    # Both cameras (placed from their reports), only the open report, a label per ward in use.
    assert {c["camera"] for c in m["cameras"]} == {"cam-a", "cam-b"}
    assert [r["id"] for r in m["reports"]] == [open_id]
    assert {w["name"]: w["open_reports"] for w in m["wards"]} == {"Phường Thuận Hóa": 1, "Phường Phú Xuân": 0}
    assert m["settings"]["tile_url"] is None
    page = client.get("/map")
    csp = page.headers["content-security-policy"]
    assert page.status_code == 200 and "img-src 'self' data:;" in csp  # no tile server: no outside image


def test_a_configured_tile_server_is_allowed_on_the_map_page_only(central_database_url: str, tmp_path: Any) -> None:
    cfg = CentralConfig.model_validate(
        {
            "database_url": central_database_url,
            "evidence_dir": str(tmp_path / "ev"),
            "map": {"tile_url": "https://{s}.tiles.ioc-hue.example/{z}/{x}/{y}.png", "attribution": "IOC Huế"},
        }
    )
    engine = make_engine(cfg.database_url)
    try:
        client = TestClient(create_app(cfg, engine=engine))
        on_map = client.get("/map", follow_redirects=False).headers["content-security-policy"]
        elsewhere = client.get("/login").headers["content-security-policy"]
    finally:
        engine.dispose()
    assert "img-src 'self' data: https://*.tiles.ioc-hue.example" in on_map
    assert "tiles.ioc-hue.example" not in elsewhere
    with pytest.raises(ValueError, match=r"lacks \{x\}"):
        CentralConfig.model_validate({"map": {"tile_url": "https://tiles.example/{z}/{y}.png"}})
