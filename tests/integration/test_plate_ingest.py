"""The plate the edge read (objects[].plate and plate_read) survives the real broker and the
ingester: stored in the event's payload, and the report carries the text."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from central.config import CentralConfig
from central.db import EventRow, ReportRow, make_engine
from central.ingester import Ingester
from contract.events import ObjectRef
from contract.topics import event_topic
from edge.plate_text import object_plate
from tests.services import Publisher, make_event, unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


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


def _rows(cfg: CentralConfig, stmt: Any) -> list[Any]:
    engine = make_engine(cfg.database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(stmt))
    finally:
        engine.dispose()


def test_plate_read_survives_ingest(cfg: CentralConfig, mqtt_broker: Any) -> None:
    details = {"plate_text": "59-X1 695.92", "plate_text_confidence": 0.97, "plate_lines": 2, "plate_track": 17}
    sha = "ab" * 32
    bike = ObjectRef(
        class_name="motorcycle",
        track_id=17,
        box=(10.0, 20.0, 110.0, 220.0),
        confidence=0.9,
        **object_plate(details, 17, sha),
    )
    unread = ObjectRef(
        class_name="motorcycle",
        track_id=18,
        box=(200.0, 20.0, 300.0, 220.0),
        confidence=0.8,
        **object_plate({**details, "plate_text": "unreadable", "plate_track": 18}, 18, None),
    )
    event = make_event(type="red_light", objects=[bike, unread])
    ing = Ingester(cfg, console=io.StringIO()).start()
    try:
        assert ing.wait_subscribed(10)
        with Publisher(mqtt_broker.url) as pub:
            pub.publish(event_topic(cfg.mqtt.topic_prefix, event.node, event.camera, event.type.value), event.to_json())
        wait_until(lambda: ing.counters.stored == 1, what="event stored")
    finally:
        ing.stop()
    (row,) = _rows(cfg, select(EventRow))
    objs = row.payload["objects"]
    assert objs[0]["plate"] == "59-X1 695.92"
    assert objs[0]["plate_read"] == {"text": "59-X1 695.92", "confidence": 0.97, "lines": 2, "crop_sha256": sha}
    assert objs[1]["plate"] is None and objs[1]["plate_read"]["text"] == "unreadable"
    (report,) = _rows(cfg, select(ReportRow))
    assert report.plate == "59-X1 695.92"  # what the console, alerts and CSV already show
