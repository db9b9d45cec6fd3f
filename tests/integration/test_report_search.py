"""Free-text search (issue 17, item 3): events published over the real broker and stored by the real
ingester are found by address, ward, camera (id and configured name), zone (id and name) and plate,
whatever the accents and case ("cau giay" finds "Phường Cầu Giấy"); every word must match; filters
combine; an empty result says so (not "No reports yet"); pages follow one another with nothing
lost or repeated; migration 0008 fills the text of reports that existed before it; on PostgreSQL
the query's plan uses the trigram index. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from central import search
from central.config import REPO_ROOT, CentralConfig
from central.db import ReportRow, make_engine, make_session_factory, migrate, session_scope
from central.ingester import Ingester
from central.services import scenes
from central.web import create_app
from contract.topics import event_topic
from tests.services import Publisher, create_database, drop_database, make_event, unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PARKING_YAML = (REPO_ROOT / "configs" / "cameras" / "vn_paved_parking_area_motorbike.yaml").read_text(encoding="utf-8")
NODE = "node-search-01"


def _obj(plate: str | None, confidence: float) -> dict[str, Any]:
    return {
        "class_name": "motorcycle",
        "track_id": 5,
        "box": (10.0, 20.0, 110.0, 220.0),
        "confidence": 0.9,
        "plate": plate,
        "plate_read": {"text": plate or "unreadable", "confidence": confidence, "lines": 2, "crop_sha256": "c" * 64},
    }


def _loc(ward: str, address: str) -> dict[str, Any]:
    return {"ward": ward, "address": address, "lat": 21.03, "lon": 105.8}


def test_fold_is_accent_and_case_blind() -> None:
    assert search.fold("Phường Cầu Giấy") == "phuong cau giay"
    assert search.fold("ĐỐNG ĐA, đường Lê Lợi") == "dong da duong le loi"
    assert search.fold("Thuận Hóa") == search.fold("thuan hoa") == search.fold("THUẬN HOÁ")  # either tone placement
    assert search.fold("50%_off") == "50 off"  # no LIKE wildcard survives into a pattern
    assert search.query_words("  CẦU  giấy cau ") == ["cau", "giay"]


@pytest.fixture
def cfg(central_database_url: str, mqtt_broker: Any, tmp_path: Path) -> CentralConfig:
    return CentralConfig.model_validate(
        {
            "database_url": central_database_url,
            "mqtt": {"url": mqtt_broker.url, "topic_prefix": unique_name("t"), "share_group": unique_name("g")},
            "evidence_dir": str(tmp_path / "evidence"),
            "web": {"public_url": "http://central.test"},
        }
    )


def test_search_by_place_camera_zone_and_plate_combines_pages_and_says_when_empty(
    cfg: CentralConfig, mqtt_broker: Any, central_users: Any, console_login: Any
) -> None:
    engine = make_engine(cfg.database_url)
    # The node reported the camera's config (scene sync): central knows its and its zones' names.
    scenes.report(make_session_factory(engine), NODE, "paved-parking-area", PARKING_YAML)
    t0 = make_event().started_at
    parking = make_event(
        node=NODE, camera="paved-parking-area", type="illegal_stopping", zone={"id": "walkway", "kind": "no_parking"},
        location=_loc("Phường Cầu Giấy", "Ngõ 1 Trần Thái Tông"), objects=[_obj("29B1-123.45", 0.9)],
    )
    # A group: the later, more confident plate read replaces the first, and the search text follows it.
    red = [
        make_event(node=NODE, camera="cam-le-loi-01", type="red_light", started_at=t0 + i * timedelta(seconds=30),
                   location=_loc("Phường Thuận Hóa", "12 Lê Lợi"), objects=[_obj(p, c)])
        for i, (p, c) in enumerate([("75A-678.90", 0.6), ("75A-999.99", 0.95)])
    ]
    vendor = make_event(node=NODE, camera="cam-hang-bai", type="sidewalk_encroachment", objects=[],
                        location=_loc("Phường Cửa Nam", "Phố Hàng Bài"))
    # Seven more reports in Cửa Nam (one camera each: seven groups) for the pages.
    more = [
        make_event(node=NODE, camera=f"cam-cua-nam-{i}", type="illegal_stopping", started_at=t0 + timedelta(minutes=i),
                   location=_loc("Phường Cửa Nam", f"{i} Tràng Thi"), objects=[])
        for i in range(7)
    ]
    events = [parking, *red, vendor, *more]
    ing = Ingester(cfg, console=io.StringIO()).start()
    try:
        assert ing.wait_subscribed(10)
        with Publisher(mqtt_broker.url) as pub:
            for e in events:
                pub.publish(event_topic(cfg.mqtt.topic_prefix, e.node, e.camera, e.type.value), e.to_json())
        wait_until(lambda: ing.counters.stored == len(events), timeout=30, what="events stored")
    finally:
        ing.stop()

    client = TestClient(create_app(cfg, engine=engine))
    console_login(client, "op")
    try:
        def found(**params: Any) -> set[str]:
            r = client.get("/api/reports", params=params)
            assert r.status_code == 200, r.text
            return {v["place"]["camera"] for v in r.json()["reports"]}

        cua_nam = {"cam-hang-bai", *(f"cam-cua-nam-{i}" for i in range(7))}
        # Ward, any accents and case, with or without "Phường".
        for q in ("cau giay", "Cầu Giấy", "CẦU GIẤY", "phuong cau giay", "giấy"):
            assert found(q=q) == {"paved-parking-area"}, q
        assert found(q="cua nam") == cua_nam
        assert found(q="thuan hoa") == {"cam-le-loi-01"}
        # Address.
        assert found(q="le loi") == {"cam-le-loi-01"}
        assert found(q="hàng bài") == {"cam-hang-bai"}
        assert found(q="trang thi") == cua_nam - {"cam-hang-bai"}
        # The camera's configured name and its zone's name (from the scene central holds), and the ids.
        assert found(q="canh bai do xe") == {"paved-parking-area"}  # "Lối đi lát gạch cạnh bãi đỗ xe"
        assert found(q="loi di bo") == {"paved-parking-area"}  # zone walkway: "Lối đi bộ lát gạch"
        assert found(q="paved") == {"paved-parking-area"}
        assert found(q="walkway") == {"paved-parking-area"}
        # The plate, typed any way; the group's better read replaced the first one.
        assert found(q="29b1 12345") == found(q="29B112345") == found(q="123.45") == {"paved-parking-area"}
        assert found(q="99999") == {"cam-le-loi-01"}
        assert found(q="678.90") == set()
        # Every word must match, in any field.
        assert found(q="cau giay walkway") == {"paved-parking-area"}
        assert found(q="cau giay le loi") == set()
        # Nothing searchable in the text: no filter (not "everything matches '%'").
        assert len(found(q="%")) == len(found()) == 10
        # Filters combine with the search.
        assert found(q="cua nam", type="sidewalk_encroachment") == {"cam-hang-bai"}
        assert found(q="cua nam", camera="cam-cua-nam-3") == {"cam-cua-nam-3"}
        assert found(q="cau giay", status="rejected") == set()
        assert found(q="thuan hoa", plate="75a") == {"cam-le-loi-01"}
        assert found(q="thuan hoa", plate="29b1") == set()

        # An empty result says there is no match, not that there are no reports.
        page = client.get("/reports", params={"q": "khong co dau ca"})
        assert "Không có phản ánh khớp bộ lọc" in page.text and "No reports yet" not in page.text
        assert 'value="khong co dau ca"' in page.text  # the field keeps what was typed
        page = client.get("/reports", params={"q": "cua nam", "type": "red_light"})
        assert "Không có phản ánh khớp bộ lọc" in page.text
        assert "Chưa có phản ánh nào" not in page.text

        # Pages: newest first, three at a time, "next" until the last; nothing lost or repeated.
        url: str | None = "/reports?q=cua+nam&limit=3"
        seen: list[int] = []
        pages = 0
        while url:
            page = client.get(url)
            assert page.status_code == 200
            pages += 1
            assert "8 phản ánh khớp bộ lọc" in page.text  # the total of the search, on every page
            ids = [int(i) for i in re.findall(r'<tr id="report-(\d+)"', page.text)]
            assert 1 <= len(ids) <= 3
            seen += ids
            m = re.search(r'<a id="page-next" href="([^"]+)"', page.text)
            url = m.group(1).replace("&amp;", "&") if m else None
            assert pages <= 4
        assert pages == 3 and len(seen) == 8 and len(set(seen)) == 8 and seen == sorted(seen, reverse=True)
        with session_scope(make_session_factory(engine)) as s:
            expected = set(s.scalars(select(ReportRow.id).where(ReportRow.ward == "Phường Cửa Nam")))
        assert set(seen) == expected
        # The review queue takes the same search.
        queue = client.get("/queue", params={"q": "cau giay"}).text
        assert "paved-parking-area" in queue and "cam-le-loi-01" not in queue
    finally:
        engine.dispose()


def _old_report(conn: Any, camera: str, ward: str, address: str, plate: str | None, zone: str | None) -> None:
    eid = str(uuid.uuid4())
    conn.execute(
        text(
            "INSERT INTO events (id, node, camera, type, category, phase, started_at, ended_at, confidence, payload, "
            "received_at, clock_suspect) VALUES (:id, :node, :cam, 'illegal_stopping', 'traffic', 'point', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0.9, '{}', CURRENT_TIMESTAMP, false)"
        ),
        {"id": eid, "node": NODE, "cam": camera},
    )
    conn.execute(
        text(
            "INSERT INTO reports (event_id, category, type, node, camera, title_vi, title_en, description_vi, "
            "description_en, status, created_at, ward, district, address, zone_id, plate, plate_norm, plate_tried) "
            "VALUES (:id, 'traffic', 'illegal_stopping', :node, :cam, 't', 't', 'd', 'd', 'new', CURRENT_TIMESTAMP, "
            ":ward, 'Quận Cầu Giấy', :addr, :zone, :plate, :norm, true)"
        ),
        {"id": eid, "node": NODE, "cam": camera, "ward": ward, "addr": address, "zone": zone, "plate": plate,
         "norm": plate.replace("-", "").replace(".", "") if plate else None},
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_fills_the_search_text_of_existing_reports(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url, cleanup = f"sqlite:///{tmp_path / 'old.db'}", None
    else:
        admin = request.getfixturevalue("postgres_admin_url")
        name = f"test_search_mig_{uuid.uuid4().hex[:8]}"
        url, cleanup = create_database(admin, name), (admin, name)
    try:
        migrate(url, "0007")  # the schema before search
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO scene_versions (node, camera, version, yaml, origin, created_by, created_at, state, "
                    "state_at) VALUES (:n, 'paved-parking-area', 1, :y, 'edge', 'node', CURRENT_TIMESTAMP, 'running', "
                    "CURRENT_TIMESTAMP)"
                ),
                {"n": NODE, "y": PARKING_YAML},
            )
            _old_report(conn, "paved-parking-area", "Phường Dịch Vọng Hậu", "Lối đi cạnh bãi đỗ xe", "29B1-123.45", "walkway")
            _old_report(conn, "cam-x", "Phường Vĩnh Ninh", "12 Lê Lợi", None, None)
        engine.dispose()
        migrate(url)
        engine = make_engine(url)
        with engine.connect() as conn:
            rows: dict[str, str] = {c: t for c, t in conn.execute(text("SELECT camera, search_text FROM reports"))}
            assert rows["paved-parking-area"] == (
                "loi di canh bai do xe phuong dich vong hau quan cau giay paved parking area "
                "loi di lat gach canh bai do xe walkway loi di bo lat gach 29b1 123 45 29b112345"
            )
            assert rows["cam-x"] == "12 le loi phuong vinh ninh quan cau giay cam x"
            if backend == "postgresql":
                idx = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_reports_search_text_trgm'"))
                assert "gin_trgm_ops" in (idx.scalar() or "")
        # The migrated rows are found as new ones are (the text is the one central.search writes).
        with session_scope(make_session_factory(engine)) as s:
            from central.auth import User
            from central.queries import ReportFilter, list_reports

            admin_user = User(id=0, username="t", role="admin", districts=())
            hits = list_reports(s, admin_user, ReportFilter(q="dich vong hau"), 10)
            assert [r.camera for r in hits] == ["paved-parking-area"]
            report = hits[0]
            assert report.search_text == search.report_text(report, "Lối đi lát gạch cạnh bãi đỗ xe", "Lối đi bộ lát gạch")
        engine.dispose()
    finally:
        if cleanup:
            drop_database(*cleanup)


def test_postgresql_search_plan_uses_the_trigram_index(postgres_admin_url: str) -> None:
    name = f"test_search_plan_{uuid.uuid4().hex[:8]}"
    url = create_database(postgres_admin_url, name)
    try:
        migrate(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            # 100,000 reports over 300 wards: enough that the planner prefers the index to a scan
            # (at a few ten thousand rows a backward scan of the primary key is cheaper, and chosen).
            conn.execute(text(
                "INSERT INTO events (id, node, camera, type, category, phase, started_at, ended_at, confidence, "
                "payload, received_at, clock_suspect) SELECT lpad(g::text, 36, '0'), 'n', 'cam-' || (g % 50), "
                "'red_light', 'traffic', 'point', now(), now(), 0.9, '{}'::jsonb, now(), false "
                "FROM generate_series(1, 100000) AS g"
            ))
            conn.execute(text(
                "INSERT INTO reports (event_id, category, type, node, camera, title_vi, title_en, description_vi, "
                "description_en, status, created_at, best_event_id, search_text) "
                "SELECT lpad(g::text, 36, '0'), 'traffic', 'red_light', 'n', 'cam-' || (g % 50), 't', 't', 'd', 'd', "
                "'new', now(), lpad(g::text, 36, '0'), 'so ' || g || ' duong pho ' || (g % 997) || ' phuong w' || "
                "(g % 300) || 'x cam ' || (g % 50) FROM generate_series(1, 100000) AS g"
            ))
            conn.execute(text("ANALYZE reports"))
        from central.queries import ReportFilter, apply_filter

        f = ReportFilter(q="phuong w217x")
        page = apply_filter(select(ReportRow.id), f).order_by(ReportRow.id.desc()).limit(50).compile(engine)
        # The list's count of matches: a first page may be served by a backward scan of the primary
        # key that stops after 50 hits (the planner's call, and a fair one), but counting the matches
        # must not read every report.
        count = apply_filter(select(func.count()).select_from(ReportRow), f).compile(engine)
        with engine.connect() as conn:
            plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + str(count), count.params).scalars())
            hits = conn.exec_driver_sql(str(page), page.params).all()
            total = conn.exec_driver_sql(str(count), count.params).scalar()
        assert "ix_reports_search_text_trgm" in plan, plan
        assert len(hits) == 50 and total == 333  # 333 reports in that ward; the newest 50 on the page
        engine.dispose()
    finally:
        drop_database(postgres_admin_url, name)
