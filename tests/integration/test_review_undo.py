"""The review's undo window, bulk actions, reopen and closed reports (issue 17, item 7), on both
databases through the console's HTTP routes.

A person's confirmation is recorded at once; forwarding and the police alert wait
`review.undo_seconds`, kept in the database (`reports.forward_after`), and are released by the alert
dispatcher: undone inside the window, no alert is ever written; past it, exactly one, also when the
web process is restarted in between and two dispatchers race for it.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from central.alerts import AlertDispatcher
from central.config import CentralConfig
from central.db import AlertRow, ReportHistoryRow, ReportRow, make_engine, make_session_factory
from central.services import review
from central.web import create_app
from contract.topics import event_topic
from tests.services import make_event, unique_name, wait_until
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _cfg(url: str, tmp_path: Path, broker: Any = None, undo_seconds: float = 10) -> CentralConfig:
    data: dict[str, Any] = {
        "database_url": url,
        "evidence_dir": str(tmp_path / "ev"),
        "review": {"undo_seconds": undo_seconds},
        "alerts": {"poll_interval_s": 0.1},
    }
    if broker is not None:
        data["mqtt"] = {"url": broker.url, "topic_prefix": unique_name("t")}
    return CentralConfig.model_validate(data)


def _store(cfg: CentralConfig, engine: Engine, **overrides: Any) -> int:
    processor = ingest_processor(cfg, engine)
    ev = make_event(type="red_light", **overrides)
    out = processor.process(event_topic("ioc", ev.node, ev.camera, ev.type.value), ev.to_json().encode())
    assert out.kind == "stored" and out.report_id, out
    return out.report_id


def _trail(engine: Engine, rid: int) -> list[tuple[str, str, str | None]]:
    with make_session_factory(engine)() as s:
        rows = s.scalars(
            select(ReportHistoryRow).where(ReportHistoryRow.report_id == rid).order_by(ReportHistoryRow.id)
        )
        return [(h.actor, h.action, h.to_status) for h in rows if h.action != "created"]


def _alerts(engine: Engine, rid: int) -> int:
    with make_session_factory(engine)() as s:
        return len(list(s.scalars(select(AlertRow).where(AlertRow.report_id == rid))))


def _report(engine: Engine, rid: int) -> ReportRow:
    with make_session_factory(engine)() as s:
        row = s.get(ReportRow, rid)
        assert row is not None
        return row


def test_undo_inside_the_window_means_no_alert_ever(
    central_database_url: str, central_users: Any, console_login: Any, mqtt_broker: Any, tmp_path: Path
) -> None:
    cfg = _cfg(central_database_url, tmp_path, mqtt_broker, undo_seconds=3)
    engine = make_engine(cfg.database_url)
    rid = _store(cfg, engine)
    client = TestClient(create_app(cfg, engine=engine))
    csrf = console_login(client, "op")
    dispatcher = AlertDispatcher(cfg, engine).start()
    try:
        # The console's form: back to the queue with "Confirmed — Undo (3 s)".
        r = client.post(
            f"/reports/{rid}/actions/confirm", data={"csrf_token": csrf, "next": "/queue"}, follow_redirects=False
        )
        assert r.status_code == 303 and r.headers["location"] == f"/queue?undo={rid}"
        page = client.get(r.headers["location"]).text
        assert 'id="undo-bar"' in page and f"/reports/{rid}/actions/undo" in page and "Hoàn tác" in page
        assert _report(engine, rid).status == "confirmed" and _alerts(engine, rid) == 0
        undone = client.post(f"/api/reports/{rid}/undo", headers={"X-CSRF-Token": csrf})
        assert undone.status_code == 200 and undone.json()["status"] == "new"
        time.sleep(4.5)  # well past the window, the dispatcher polling every 0.1 s
        assert _alerts(engine, rid) == 0
        assert _trail(engine, rid) == [("op", "confirm", "confirmed"), ("op", "undo_confirm", "new")]
        assert _report(engine, rid).forward_after is None
        # Undo twice, or with nothing confirmed: refused.
        assert client.post(f"/api/reports/{rid}/undo", headers={"X-CSRF-Token": csrf}).status_code == 409
        # Confirmed again and left alone: now it goes out, once.
        assert client.post(f"/api/reports/{rid}/confirm", headers={"X-CSRF-Token": csrf}).status_code == 200
        wait_until(lambda: _alerts(engine, rid) == 1, timeout=10, what="the alert after the window")
        assert _report(engine, rid).status == "forwarded"
        late = client.post(f"/api/reports/{rid}/undo", headers={"X-CSRF-Token": csrf})
        assert late.status_code == 409  # too late: it was sent
    finally:
        dispatcher.stop()
        engine.dispose()


def test_after_the_window_exactly_one_alert_across_a_restart(
    central_database_url: str, central_users: Any, console_login: Any, mqtt_broker: Any, tmp_path: Path
) -> None:
    cfg = _cfg(central_database_url, tmp_path, mqtt_broker, undo_seconds=2)
    engine = make_engine(cfg.database_url)
    rid = _store(cfg, engine)
    client = TestClient(create_app(cfg, engine=engine))
    csrf = console_login(client, "op")
    r = client.post(f"/api/reports/{rid}/confirm", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["status"] == "confirmed" and r.json()["undo_until"]
    # The web process goes away (nothing in memory survives) before the window is over.
    client.close()
    engine.dispose()
    assert _alerts(make_engine(cfg.database_url), rid) == 0

    engine = make_engine(cfg.database_url)  # a new process: only the database carries the window
    sessions = make_session_factory(engine)
    dispatchers = [AlertDispatcher(cfg, engine).start(), AlertDispatcher(cfg, engine).start()]
    released: list[int] = []
    stop = threading.Event()

    def racer() -> None:  # a third releaser, hammering: still one forward, one alert
        while not stop.is_set():
            released.append(review.release_due(sessions, cfg))
            time.sleep(0.01)

    t = threading.Thread(target=racer)
    t.start()
    try:
        wait_until(lambda: _alerts(engine, rid) == 1, timeout=15, what="the alert after the window")
        time.sleep(1.0)
    finally:
        stop.set()
        t.join()
        for d in dispatchers:
            d.stop()
    assert _alerts(engine, rid) == 1
    steps = [a for _w, a, _to in _trail(engine, rid)]
    assert steps == ["confirm", "forward", "alert_queued"], steps
    assert _report(engine, rid).status == "forwarded" and _report(engine, rid).forward_after is None
    wait_until(lambda: _sent(engine, rid), timeout=10, what="the alert published to MQTT")
    engine.dispose()


def _sent(engine: Engine, rid: int) -> bool:
    with make_session_factory(engine)() as s:
        return s.scalar(select(AlertRow.mqtt_sent_at).where(AlertRow.report_id == rid)) is not None


def test_undo_zero_keeps_the_old_behaviour(
    central_database_url: str, central_users: Any, console_login: Any, tmp_path: Path
) -> None:
    cfg = _cfg(central_database_url, tmp_path, undo_seconds=0)
    engine = make_engine(cfg.database_url)
    rid = _store(cfg, engine)
    client = TestClient(create_app(cfg, engine=engine))
    csrf = console_login(client, "op")
    r = client.post(f"/api/reports/{rid}/confirm", headers={"X-CSRF-Token": csrf})
    assert r.json() == {"id": rid, "status": "forwarded", "undo_until": None}
    assert _alerts(engine, rid) == 1
    engine.dispose()


def test_bulk_reject_and_confirm_with_one_reason(
    central_database_url: str, central_users: Any, console_login: Any, tmp_path: Path
) -> None:
    cfg = _cfg(central_database_url, tmp_path)
    engine = make_engine(cfg.database_url)
    ids = [_store(cfg, engine, camera=f"cam-{i}") for i in range(4)]
    client = TestClient(create_app(cfg, engine=engine))
    csrf = console_login(client, "op")
    # The queue's form: several ids, one reason; back to the queue saying how many were done.
    r = client.post(
        "/reports/bulk",
        data={
            "csrf_token": csrf,
            "action": "reject",
            "reason": "bóng cây / tree shadow",
            "ids": ids[:3],
            "next": "/queue",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/queue?done=3"
    for rid in ids[:3]:
        assert _trail(engine, rid) == [("op", "reject", "rejected")]  # one audit row per report
        assert _report(engine, rid).reject_reason == "bóng cây / tree shadow"
    assert _report(engine, ids[3]).status == "new"
    # The reason is shown in the list.
    listing = client.get("/reports").text
    assert listing.count("bóng cây / tree shadow") == 3
    # Already rejected ones are refused one by one; the new one is confirmed.
    r = client.post(
        "/api/reports/bulk", json={"ids": [ids[0], ids[3]], "action": "confirm"}, headers={"X-CSRF-Token": csrf}
    )
    results = {x["id"]: x for x in r.json()["results"]}
    assert results[ids[0]]["ok"] is False and "rejected" in results[ids[0]]["error"]
    assert results[ids[3]] == {"id": ids[3], "ok": True, "status": "confirmed", "error": None}
    # No reason to reject, no CSRF token, police: refused.
    no_reason = client.post(
        "/api/reports/bulk", json={"ids": [ids[3]], "action": "reject"}, headers={"X-CSRF-Token": csrf}
    )
    assert no_reason.status_code == 422
    assert (
        client.post("/api/reports/bulk", json={"ids": [ids[3]], "action": "reject", "reason": "x"}).status_code == 403
    )
    police = TestClient(create_app(cfg, engine=engine))
    pcsrf = console_login(police, "police-hue")
    r = police.post(
        "/api/reports/bulk", json={"ids": [ids[3]], "action": "reject", "reason": "x"}, headers={"X-CSRF-Token": pcsrf}
    )
    assert r.status_code == 200 and r.json()["results"][0]["ok"] is False
    assert _report(engine, ids[3]).status == "confirmed"
    engine.dispose()


def test_reopen_by_an_admin_is_audited_and_closed_reports_have_no_deadline(
    central_database_url: str, central_users: Any, console_login: Any, tmp_path: Path
) -> None:
    cfg = _cfg(central_database_url, tmp_path)
    engine = make_engine(cfg.database_url)
    rid = _store(cfg, engine)
    op = TestClient(create_app(cfg, engine=engine))
    csrf = console_login(op, "op")
    assert _report(engine, rid).deadline_at is not None
    open_page = op.get(f"/reports/{rid}").text
    assert "(đã đóng / closed)" not in open_page
    op.post(f"/reports/{rid}/actions/reject", data={"csrf_token": csrf, "reason": "xe cứu thương / ambulance"})
    page = op.get(f"/reports/{rid}").text
    assert 'id="reject-reason"' in page and "xe cứu thương / ambulance" in page
    deadline = re.search(r'<td id="deadline">(.*?)</td>', page, re.S)
    assert deadline and "closed" in deadline.group(1) and re.search(r"\d{2}:\d{2}", deadline.group(1)) is None
    assert 'id="action-reopen"' not in page  # operators do not reopen
    assert (
        op.post(f"/api/reports/{rid}/reopen", json={"reason": "x"}, headers={"X-CSRF-Token": csrf}).status_code == 403
    )

    admin = TestClient(create_app(cfg, engine=engine))
    acsrf = console_login(admin, "admin")
    page = admin.get(f"/reports/{rid}").text
    assert 'id="action-reopen"' in page  # the console offers it to an admin
    r = admin.post(
        f"/reports/{rid}/actions/reopen",
        data={"csrf_token": acsrf, "reason": "xem lại / look again"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert _trail(engine, rid)[-1] == ("admin", "reopen", "new")
    assert _report(engine, rid).reject_reason is None
    page = admin.get(f"/reports/{rid}").text
    assert "xem lại / look again" in page and 'id="reject-reason"' not in page
    engine.dispose()
