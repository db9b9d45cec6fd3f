"""The watch list end to end: an admin enters a plate (JSON API, CSRF); an event of any rule whose
offender's plate is read as that plate, published over the real broker and stored by the real
ingester, puts an alert on the district's police MQTT topic and signed webhook at once, marked
"watch list" with the note, once per report. A plate not on the list, a partial read of a listed
plate, an unreadable plate and a removed entry alert nobody. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from central.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, AlertDispatcher, verify
from central.db import AlertRow, ReportHistoryRow, ReportRow, make_engine, make_session_factory, session_scope
from central.ingester import Ingester
from central.web import create_app
from contract.topics import event_topic
from tests.integration.test_central_alerts import SECRET, Hook, Subscriber, _cfg
from tests.services import Publisher, make_event, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

NOTE = "Xe bị trộm, CA phường Vĩnh Ninh tiếp nhận 01/12 / stolen motorbike, case 2026-1201"


@pytest.fixture
def hook() -> Any:
    h = Hook()
    yield h
    h.close()


def _bike(plate: str | None, confidence: float = 0.96, track: int = 17) -> dict[str, Any]:
    """A motorbike as the edge sends it: `plate` only when readable, the read in `plate_read`."""
    read = {"text": plate or "unreadable", "confidence": confidence, "lines": 2, "crop_sha256": "c" * 64}
    return {
        "class_name": "motorcycle",
        "track_id": track,
        "box": (100.0, 120.0, 220.0, 330.0),
        "confidence": 0.9,
        "plate": plate,
        "plate_read": read,
    }


def _event(camera: str, plate: str | None, **kw: Any) -> Any:
    evidence = [
        {"kind": "snapshot", "media_type": "image/jpeg", "sha256": "a" * 64, "size": 100},
        {"kind": "composite", "media_type": "image/jpeg", "sha256": "e" * 64, "size": 300},
    ]
    return make_event(camera=camera, objects=[_bike(plate)], evidence=evidence, **kw)


def test_watch_listed_plate_alerts_police_at_once_with_the_note(
    central_database_url: str, central_users: Any, console_login: Any, mqtt_broker: Any, tmp_path: Path, hook: Hook
) -> None:
    cfg = _cfg(central_database_url, mqtt_broker, tmp_path, hook)
    engine = make_engine(cfg.database_url)
    with session_scope(make_session_factory(engine)) as s:
        s.execute(text("DELETE FROM watch_list"))  # PostgreSQL is shared between the tests
    admin = TestClient(create_app(cfg, engine=engine))
    csrf = console_login(admin, "admin")
    # Entered as a person types it: case, spaces, dashes and dots do not matter.
    r = admin.post("/api/watch-list", json={"plate": "29b1 12345", "note": NOTE}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    watched = r.json()
    assert watched["plate_norm"] == "29B112345" and watched["created_by"] == "admin" and watched["active"]
    removed = admin.post(
        "/api/watch-list", json={"plate": "43A-555.55", "note": "found"}, headers={"X-CSRF-Token": csrf}
    ).json()
    assert (
        admin.delete(f"/api/watch-list/{removed['id']}", headers={"X-CSRF-Token": csrf}).json()["removed_by"] == "admin"
    )
    # Who may not: without the CSRF token, an operator, and "unreadable" as a plate.
    assert admin.post("/api/watch-list", json={"plate": "30A-111.11", "note": "x"}).status_code == 403
    assert (
        admin.post(
            "/api/watch-list", json={"plate": "unreadable", "note": "x"}, headers={"X-CSRF-Token": csrf}
        ).status_code
        == 422
    )
    op = TestClient(create_app(cfg, engine=engine))
    op_csrf = console_login(op, "op")
    assert (
        op.post(
            "/api/watch-list", json={"plate": "30A-111.11", "note": "x"}, headers={"X-CSRF-Token": op_csrf}
        ).status_code
        == 403
    )
    assert op.get("/api/watch-list").status_code == 403

    sub = Subscriber(mqtt_broker.url, f"{cfg.mqtt.topic_prefix}/alerts/#")
    ingester = Ingester(cfg, console=io.StringIO()).start()
    dispatcher = AlertDispatcher(cfg, engine).start()
    try:
        assert ingester.wait_subscribed(10)
        # Sidewalk encroachment (urban order, never alerted by itself): the watch list is any rule.
        seen = _event("cam-a", "29-B1 123.45", type="sidewalk_encroachment")
        again = _event(
            "cam-a",
            "29-B1 123.45",
            type="sidewalk_encroachment",
            started_at=seen.started_at + (seen.ended_at - seen.started_at) / 2,
        )
        others = [
            _event("cam-b", "30A-999.99", type="red_light"),  # not on the list
            _event("cam-c", "B1 123.45", type="red_light"),  # a partial read of the listed plate
            _event("cam-d", None, type="red_light"),  # unreadable
            _event("cam-e", "43A-555.55", type="red_light"),  # its entry was removed
        ]
        with Publisher(mqtt_broker.url) as pub:
            for e in [*others, seen]:
                pub.publish(event_topic(cfg.mqtt.topic_prefix, e.node, e.camera, e.type.value), e.to_json())
            wait_until(lambda: ingester.counters.stored == 5, timeout=20, what="events stored")
            wait_until(lambda: sub.messages and hook.calls, timeout=10, what="watch-list alert on MQTT and webhook")
            pub.publish(event_topic(cfg.mqtt.topic_prefix, again.node, again.camera, again.type.value), again.to_json())
            wait_until(lambda: ingester.counters.stored == 6, timeout=20, what="second sighting stored")
        time.sleep(1.0)  # a wrong second alert would be dispatched by now (poll 0.1 s)
        assert len(sub.messages) == 1, [t for t, *_ in sub.messages]
        topic, payload, _at = sub.messages[0]
        assert topic == f"{cfg.mqtt.topic_prefix}/alerts/thanh-pho-hue/sidewalk_encroachment"
        body = json.loads(payload)
        assert body["watch_list"]["note"] == NOTE and body["watch_list"]["id"] == watched["id"]
        assert body["watch_list"]["event_id"] == seen.id
        assert body["plate"] == "29-B1 123.45" and body["plate_confidence"] == pytest.approx(0.96)
        assert body["composite_url"].startswith("http://c.test/evidence/" + "e" * 64)
        assert body["snapshot_url"].startswith("http://c.test/evidence/" + "a" * 64)
        (headers, raw) = hook.calls[0]
        assert json.loads(raw) == body and len(hook.calls) == 1
        assert verify(SECRET, headers[TIMESTAMP_HEADER.lower()], raw, headers[SIGNATURE_HEADER.lower()])
        with make_session_factory(engine)() as s:
            (alert,) = s.scalars(select(AlertRow))
            report = s.get(ReportRow, alert.report_id)
            assert report is not None and report.event_count == 2 and report.watch_alerted_at is not None
            notes = list(s.scalars(select(ReportHistoryRow.note).where(ReportHistoryRow.action == "watch_list_alert")))
        assert notes == [f"#{watched['id']}: {NOTE}"]
        # The district's police see it in their feed, with the note; another district's do not.
        for user, want in (("police-hue", [NOTE]), ("police-hk", [])):
            c = TestClient(create_app(cfg, engine=engine))
            console_login(c, user)
            assert [a["watch_list"]["note"] for a in c.get("/api/alerts").json()["alerts"]] == want, user
            # ... and may open the (urban-order, unreviewed) report the alert links; the other may not.
            assert c.get(f"/api/reports/{alert.report_id}").status_code == (200 if want else 404), user
        # A plate listed after it passed a camera: the page lists the stored report; no alert for the past.
        late = admin.post(
            "/api/watch-list", json={"plate": "30A 99999", "note": "late"}, headers={"X-CSRF-Token": csrf}
        )
        page = admin.get("/watch-list").text
        for entry_id, want in ((late.json()["id"], 1), (watched["id"], 1)):
            row = page.split(f'id="watch-{entry_id}"', 1)[1].split("</tr>", 1)[0]
            assert f"{want} phản ánh / reports" in row and 'href="/reports?plate=' in row, row
        assert "chưa có / none" not in page.split(f'id="watch-{late.json()["id"]}"', 1)[1].split("</tr>", 1)[0]
        listed = admin.get("/reports", params={"plate": "30A99999"}).text
        assert f"/reports/{_report_of(engine, 'cam-b')}" in listed  # the link finds the report
        time.sleep(0.5)
        assert len(sub.messages) == 1  # still only the live sighting's alert
    finally:
        dispatcher.stop()
        ingester.stop()
        sub.close()
        engine.dispose()


def _report_of(engine: Any, camera: str) -> int:
    with make_session_factory(engine)() as s:
        return int(s.scalars(select(ReportRow.id).where(ReportRow.camera == camera)).one())


def test_expired_entry_alerts_nobody_and_the_page_is_admin_only(
    central_database_url: str, central_users: Any, console_login: Any, tmp_path: Path, mqtt_broker: Any, hook: Hook
) -> None:
    from datetime import timedelta

    from central import watch_list
    from central.db import utcnow
    from central.ingester import MessageProcessor

    cfg = _cfg(central_database_url, mqtt_broker, tmp_path, hook)
    engine = make_engine(cfg.database_url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as s:
        s.execute(text("DELETE FROM watch_list"))
        row = watch_list.add(s, "51F-222.22", "short watch", actor="admin", expires_at=utcnow() + timedelta(seconds=1))
        assert row.active(utcnow())
    time.sleep(1.2)
    processor = MessageProcessor(
        sessions,
        dialect_name=engine.dialect.name,
        evidence_dir=cfg.evidence_dir,
        topic_prefix=cfg.mqtt.topic_prefix,
        config=cfg,
    )
    ev = _event("cam-x", "51F-222.22", type="red_light")
    assert (
        processor.process(
            event_topic(cfg.mqtt.topic_prefix, ev.node, ev.camera, "red_light"), ev.to_json().encode()
        ).kind
        == "stored"
    )
    with sessions() as s:
        assert list(s.scalars(select(AlertRow))) == []
    # The page: admins get the form and the entry (expired); others are refused.
    admin = TestClient(create_app(cfg, engine=engine))
    console_login(admin, "admin")
    page = admin.get("/watch-list")
    assert page.status_code == 200 and "51F-222.22" in page.text and "hết hạn / expired" in page.text
    # The page's form: a local expiry time (Asia/Ho_Chi_Minh, UTC+7), and a refusal shown on the page.
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = admin.post("/watch-list", data={"csrf_token": token, "plate": "29", "note": "typo"})
    assert r.status_code == 422 and "not a plate" in r.text and 'value="29"' in r.text
    r = admin.post(
        "/watch-list",
        data={"csrf_token": token, "plate": "75A-678.90", "note": "n", "expires_at": "2099-01-02T07:30"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    (entry,) = [e for e in admin.get("/api/watch-list").json()["entries"] if e["plate"] == "75A-678.90"]
    assert entry["expires_at"] == "2099-01-02T00:30:00+00:00" and entry["active"]
    assert admin.post("/watch-list", data={"plate": "75A-678.91", "note": "n"}).status_code == 403  # no token
    police = TestClient(create_app(cfg, engine=engine))
    console_login(police, "police-hue")
    assert police.get("/watch-list").status_code == 403
    engine.dispose()
