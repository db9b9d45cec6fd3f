"""Plates in the console: the edge's plate reads, published over the real broker and stored by the
real ingester, become the reports' plates (the most confident read of a group; "unreadable" never
a plate, shown as unreadable), searchable by full or partial plate however it is typed (case,
spaces, dashes, dots), in the list page, the JSON API and the CSV with the confidence; never on the
public pages. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from central.config import CentralConfig
from central.db import make_engine, make_session_factory, session_scope, utcnow
from central.ingester import Ingester
from central.web import create_app
from contract.topics import event_topic
from tests.services import Publisher, make_event, unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _obj(plate: str | None, confidence: float, lines: int = 2, cls: str = "motorcycle") -> dict[str, Any]:
    return {
        "class_name": cls,
        "track_id": 5,
        "box": (10.0, 20.0, 110.0, 220.0),
        "confidence": 0.9,
        "plate": plate,
        "plate_read": {"text": plate or "unreadable", "confidence": confidence, "lines": lines, "crop_sha256": "c" * 64},
    }


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


def test_plates_are_stored_searched_exported_and_kept_off_public_pages(
    cfg: CentralConfig, mqtt_broker: Any, central_users: Any, console_login: Any
) -> None:
    t0 = make_event().started_at
    step = timedelta(seconds=30)
    bike = make_event(camera="cam-1", type="red_light", objects=[_obj("29-B1 123.45", 0.97)])
    car = make_event(camera="cam-2", type="illegal_stopping", objects=[_obj("30A-123.45", 0.9, 1, "car")])
    # One group (same camera, zone, type, within the window): a weak read, a confident one, a
    # weaker one and an unreadable one: the confident read is the report's plate.
    group = [
        make_event(camera="cam-3", type="red_light", started_at=t0 + i * step, objects=[_obj(p, c)])
        for i, (p, c) in enumerate([("51F-111.11", 0.62), ("51F-777.77", 0.94), ("51F-000.00", 0.5), (None, 0.3)])
    ]
    unread = make_event(camera="cam-4", type="red_light", objects=[_obj(None, 0.2)])
    events = [bike, car, *group, unread]
    ing = Ingester(cfg, console=io.StringIO()).start()
    try:
        assert ing.wait_subscribed(10)
        with Publisher(mqtt_broker.url) as pub:
            for e in events:
                pub.publish(event_topic(cfg.mqtt.topic_prefix, e.node, e.camera, e.type.value), e.to_json())
        wait_until(lambda: ing.counters.stored == len(events), timeout=20, what="events stored")
    finally:
        ing.stop()

    engine = make_engine(cfg.database_url)
    client = TestClient(create_app(cfg, engine=engine))
    console_login(client, "op")
    try:
        by_camera = {r["place"]["camera"]: r for r in client.get("/api/reports").json()["reports"]}
        assert set(by_camera) == {"cam-1", "cam-2", "cam-3", "cam-4"}
        assert by_camera["cam-3"]["event_count"] == 4
        assert by_camera["cam-3"]["plate"] == "51F-777.77"
        assert by_camera["cam-3"]["plate_read"]["confidence"] == pytest.approx(0.94)
        assert by_camera["cam-2"]["plate_read"] == {
            "text": "30A-123.45", "readable": True, "confidence": pytest.approx(0.9), "lines": 1, "crop_sha256": "c" * 64
        }
        assert by_camera["cam-4"]["plate"] is None and by_camera["cam-4"]["plate_read"]["text"] == "unreadable"
        assert by_camera["cam-4"]["plate_read"]["readable"] is False

        def found(plate: str) -> set[str]:
            r = client.get("/api/reports", params={"plate": plate})
            assert r.status_code == 200, r.text
            return {v["place"]["camera"] for v in r.json()["reports"]}

        assert found("29b1 12345") == {"cam-1"}  # as typed, without the dash and the dot
        assert found("29-B1 123.45") == {"cam-1"}
        assert found("29B112345") == {"cam-1"}
        assert found("123.45") == {"cam-1", "cam-2"}  # partial: both end in 123.45
        assert found("12345") == {"cam-1", "cam-2"}
        assert found("30a") == {"cam-2"}
        assert found("777") == {"cam-3"}
        assert found("111.11") == set()  # the group's weak read was replaced by the confident one
        assert found("29-B2") == set()
        assert found("unreadable") == set()  # an unreadable read is no plate
        assert found("") == {"cam-1", "cam-2", "cam-3", "cam-4"}  # an empty field filters nothing

        page = client.get("/reports", params={"plate": "29b1 12345"})
        assert page.status_code == 200
        assert "29-B1 123.45" in page.text and "97%" in page.text and "30A-123.45" not in page.text
        assert 'value="29b1 12345"' in page.text  # the filter keeps what was typed
        queue = client.get("/queue").text  # the review queue's items carry the read too
        assert "29-B1 123.45</strong> <span class=\"en\">(97%)" in queue and "plate unreadable" in queue
        detail = client.get(f"/reports/{by_camera['cam-4']['id']}")
        assert "không đọc được" in detail.text and "unreadable" in detail.text
        detail = client.get(f"/reports/{by_camera['cam-3']['id']}")
        assert "51F-777.77" in detail.text and "94%" in detail.text

        rows = list(csv.DictReader(io.StringIO(client.get("/reports.csv").content.decode("utf-8-sig"))))
        csv_by_camera = {r["camera"]: r for r in rows}
        assert csv_by_camera["cam-1"]["plate"] == "29-B1 123.45"
        assert float(csv_by_camera["cam-1"]["plate_confidence"]) == pytest.approx(0.97)
        assert csv_by_camera["cam-4"]["plate"] == "unreadable" and csv_by_camera["cam-4"]["plate_confidence"] == ""
        only = list(csv.DictReader(io.StringIO(client.get("/reports.csv", params={"plate": "30a12345"}).content.decode("utf-8-sig"))))
        assert [r["camera"] for r in only] == ["cam-2"]

        # Published: the public pages carry no plate text (the images there are blurred).
        rid = by_camera["cam-1"]["id"]
        with session_scope(make_session_factory(engine)) as s:
            s.execute(text("UPDATE reports SET published_at = :t, public_evidence = NULL WHERE id = :id"), {"t": utcnow(), "id": rid})
        anon = TestClient(create_app(cfg, engine=engine))
        for url in (f"/public/reports/{rid}", f"/public/reports/{rid}.json", "/public/reports/", "/public/reports?format=json"):
            r = anon.get(url)
            assert r.status_code == 200, url
            assert str(rid) in r.text, url  # the report is there ...
            for needle in ("29-B1", "123.45", "29B1", "plate_read"):
                assert needle not in r.text, (url, needle)  # ... its plate is not
    finally:
        engine.dispose()
