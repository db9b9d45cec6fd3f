"""Review and police in real headless Chromium (issue 17, items 7, 8 and 12): an operator confirms
with the keyboard, sees "Confirmed — Undo" counting down and undoes it (no alert ever); rejects two
reports at once with one reason (shown in the list); the district's police page receives an alert
live over Server-Sent Events, with no periodic request in its network log, rings, notifies, and
acknowledges it. Screenshots of the queue (key hints) and the police page go to the test's tmp dir.

uvicorn, a temp SQLite database and the alert dispatcher (on the test Mosquitto) are started here.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from central import evidence as evidence_files
from central.alerts import AlertDispatcher
from central.auth import create_user
from central.config import CentralConfig
from central.db import AlertRow, ReportRow, make_engine, make_session_factory, migrate, session_scope
from central.web import create_app
from contract.topics import event_topic
from edge.data import data_dir
from edge.local_broker import free_port
from tests.browser.test_central_console import PASSWORD, _login, _wait, browser  # noqa: F401 - the fixture
from tests.services import make_event, unique_name, wait_until
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

UNDO_S = 4
SNAPSHOT = "vn_intersection_redlight_day_1113.jpg"


@pytest.fixture
def center(tmp_path: Path, mqtt_broker: Any) -> Iterator[dict[str, Any]]:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(url)
    port = free_port()
    cfg = CentralConfig.model_validate(
        {
            "database_url": url,
            "evidence_dir": str(tmp_path / "ev"),
            "web": {"host": "127.0.0.1", "port": port},
            "mqtt": {"url": mqtt_broker.url, "topic_prefix": unique_name("t")},
            "review": {"undo_seconds": UNDO_S},
            "alerts": {"poll_interval_s": 0.2},
        }
    )
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        create_user(s, "op", PASSWORD, "operator")
        create_user(s, "police-hue", PASSWORD, "police", ["Thành phố Huế"])
    processor = ingest_processor(cfg, engine)
    data = (data_dir() / "images" / SNAPSHOT).read_bytes()
    sha = evidence_files.sha256_hex(data)
    assert processor.process(f"ioc/n/c/evidence/{sha}", data).kind == "evidence_stored"
    refs = [{"kind": "snapshot", "media_type": "image/jpeg", "sha256": sha, "size": len(data)}]
    ids = []
    for i in range(4):
        event = make_event(type="red_light", camera=f"cam-{i}", evidence=refs)
        out = processor.process(event_topic("ioc", event.node, event.camera, "red_light"), event.to_json().encode())
        ids.append(out.report_id)
    server = uvicorn.Server(
        uvicorn.Config(create_app(cfg, engine=engine), host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    dispatcher = AlertDispatcher(cfg, engine).start()
    try:
        wait_until(lambda: server.started, timeout=20, what="uvicorn started")
        yield {"base": f"http://127.0.0.1:{port}", "ids": ids, "engine": engine}
    finally:
        dispatcher.stop()
        server.should_exit = True
        thread.join(10)
        engine.dispose()


def _alerts(engine: Any, rid: int) -> int:
    with make_session_factory(engine)() as s:
        return len(list(s.scalars(select(AlertRow).where(AlertRow.report_id == rid))))


def _status(engine: Any, rid: int) -> str:
    with make_session_factory(engine)() as s:
        row = s.get(ReportRow, rid)
        assert row is not None
        return row.status


def test_undo_and_bulk_reject_in_the_queue(
    center: dict[str, Any],
    browser: Any,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    base, ids, engine = center["base"], center["ids"], center["engine"]
    _login(browser, base, "op")
    browser.get(f"{base}/queue")
    browser.save_screenshot(str(tmp_path / "queue.png"))
    # The key hints are readable: light text on the coloured button, not white on white.
    kbd = browser.find_element(By.CSS_SELECTOR, f"#q-{ids[0]} button.confirm kbd")
    colour = browser.execute_script("return getComputedStyle(arguments[0]).color", kbd)
    background = browser.execute_script("return getComputedStyle(arguments[0]).backgroundColor", kbd)
    assert kbd.text == "c" and colour == "rgb(255, 255, 255)" and background != "rgb(255, 255, 255)", (
        colour,
        background,
    )

    first = ids[0]
    assert "selected" in browser.find_element(By.ID, f"q-{first}").get_attribute("class")
    browser.find_element(By.TAG_NAME, "body").send_keys("c")
    bar = _wait(browser, lambda d: d.find_elements(By.ID, "undo-bar"))[0]
    assert f"undo={first}" in browser.current_url
    assert "Đã xác nhận" in bar.text and "Confirmed" in bar.text
    count = browser.find_element(By.ID, "undo-count").text
    assert re.fullmatch(r"[1-4] s", count), count
    browser.save_screenshot(str(tmp_path / "queue_undo.png"))
    browser.find_element(By.ID, "undo-button").click()
    _wait(browser, lambda d: d.find_elements(By.ID, f"q-{first}") and not d.find_elements(By.ID, "undo-bar"))
    assert _status(engine, first) == "new"
    time.sleep(UNDO_S + 1.5)  # past the window, the dispatcher polling every 0.2 s
    assert _alerts(engine, first) == 0

    # Bulk: tick two, one reason, reject.
    for rid in ids[1:3]:
        browser.find_element(By.CSS_SELECTOR, f"#q-{rid} input.pick").click()
    assert browser.find_element(By.ID, "picked-count").text == "2"
    browser.find_element(By.ID, "bulk-reason").send_keys("đèn vàng / amber light")
    browser.find_element(By.ID, "bulk-reject").click()
    done = _wait(browser, lambda d: d.find_elements(By.ID, "bulk-done"))[0]
    assert "2" in done.text
    assert not browser.find_elements(By.ID, f"q-{ids[1]}") and not browser.find_elements(By.ID, f"q-{ids[2]}")
    assert browser.find_elements(By.ID, f"q-{first}") and browser.find_elements(By.ID, f"q-{ids[3]}")
    browser.get(f"{base}/reports")
    for rid in ids[1:3]:
        assert "đèn vàng / amber light" in browser.find_element(By.ID, f"report-{rid}").text
        assert "hạn / due" not in browser.find_element(By.ID, f"report-{rid}").text  # closed: no deadline
    browser.get(f"{base}/reports/{ids[1]}")
    assert "đèn vàng / amber light" in browser.find_element(By.ID, "reject-reason").text


# A spy for the Notification API (headless Chromium shows none): what the page would have shown.
NOTIFICATION_SPY = """
window.__notes = [];
window.Notification = class { constructor(title, opts) { window.__notes.push(title); } };
window.Notification.permission = "granted";
"""
REQUESTS = """
return performance.getEntriesByType("resource")
  .filter((e) => ["fetch", "xmlhttprequest"].includes(e.initiatorType))
  .map((e) => e.name);
"""


def test_police_page_receives_an_alert_live_and_acknowledges_it(
    center: dict[str, Any],
    browser: Any,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    base, ids, engine = center["base"], center["ids"], center["engine"]
    _login(browser, base, "police-hue")
    browser.get(f"{base}/police")
    _wait(browser, lambda d: "live" in d.find_element(By.ID, "live-state").text)
    browser.find_element(By.ID, "enable-alerts").click()  # a click lets the page make sound
    browser.execute_script(NOTIFICATION_SPY)
    time.sleep(2)  # the backlog (none) is in; a new alert rings from now on
    chimes_before = int(browser.execute_script("return document.getElementById('alerts-live').dataset.chimes || 0"))

    # An operator confirms, elsewhere; after the undo window the dispatcher writes the alert.
    op = httpx.Client(base_url=base, timeout=30)
    form = re.search(r'name="csrf_token" value="([^"]+)"', op.get("/login").text)
    assert form is not None
    op.post("/login", data={"username": "op", "password": PASSWORD, "csrf_token": form.group(1)})
    csrf = op.get("/api/me").json()["csrf"]
    rid = ids[3]
    assert not browser.find_elements(By.ID, f"report-{rid}")  # not the police's before it is confirmed
    assert op.post(f"/api/reports/{rid}/confirm", headers={"X-CSRF-Token": csrf}).json()["status"] == "confirmed"
    row = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.alert"), timeout=UNDO_S + 15)[0]
    assert f"#{rid}" in row.text and "75A-123.45" in row.text
    assert browser.execute_script("return window.__notes") == [
        f"#{rid} " + row.find_element(By.TAG_NAME, "strong").text.split(" ", 1)[1]
    ]
    chimes = int(browser.execute_script("return document.getElementById('alerts-live').dataset.chimes || 0"))
    assert chimes == chimes_before + 1
    # The report table below lists the newly forwarded report without a reload: one fetch of the
    # page per new alert, then nothing (an open stream, no polling).
    assert _wait(browser, lambda d: d.find_elements(By.ID, f"report-{rid}"), timeout=10)
    time.sleep(3)
    assert browser.execute_script(REQUESTS) == [f"{base}/police"]
    browser.save_screenshot(str(tmp_path / "police_alert.png"))

    row.find_element(By.CSS_SELECTOR, "button.ack").click()
    done = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.alert .ack-done"))[0]
    assert "police-hue" in done.text
    browser.save_screenshot(str(tmp_path / "police_ack.png"))
    assert [r for r in browser.execute_script(REQUESTS) if "/api/alerts" in r] == [
        f"{base}/api/alerts/{_alert_id(engine, rid)}/ack"
    ]  # the only request the page made: the acknowledgement
    with make_session_factory(engine)() as s:
        alert = s.scalars(select(AlertRow).where(AlertRow.report_id == rid)).one()
        assert alert.acknowledged_by == "police-hue" and alert.acknowledged_at is not None
    # Reloaded, the page shows who took it.
    browser.get(f"{base}/police")
    shown = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.alert .ack-done"))[0]
    assert "police-hue" in shown.text
    op.close()


def _alert_id(engine: Any, rid: int) -> int:
    with make_session_factory(engine)() as s:
        return int(s.scalars(select(AlertRow.id).where(AlertRow.report_id == rid)).one())
