"""Health, reopen and the public version as people use them, in real headless Chromium: a stale
camera turns its row red and names itself in the banner on the queue; an admin reopens a rejected
report with a reason; an operator publishes a real camera snapshot and the public page shows it with
every labelled head and the plate blurred (labels: tests/scenarios/labels/public_blur_*.yaml)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import yaml
from sqlalchemy import update

from central import evidence as evidence_files
from central.auth import create_user
from central.config import CentralConfig
from central.db import CameraHealthRow, ReportRow, make_engine, make_session_factory, migrate, session_scope
from central.web import create_app
from contract.topics import camera_health_topic, event_topic, node_status_topic
from edge.data import data_dir
from edge.local_broker import free_port
from tests.browser.test_central_console import PASSWORD, _login, _wait, browser  # noqa: F401 (fixture)
from tests.integration.test_central_health_typed import camera_health, node_status
from tests.scenarios.test_public_blur_real import LABELS, _detail
from tests.services import make_event
from tests.support.central import ingest_processor, live_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SHOTS = Path("/tmp/console-shots")


@pytest.fixture
def console(tmp_path: Path) -> Iterator[dict[str, Any]]:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(url)
    port = free_port()
    cfg = CentralConfig.model_validate(
        {
            "database_url": url,
            "evidence_dir": str(tmp_path / "ev"),
            "web": {"host": "127.0.0.1", "port": port},
            "review": {"undo_seconds": 0},
        }
    )
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        create_user(s, "op", PASSWORD, "operator")
        create_user(s, "admin", PASSWORD, "admin")
    processor = ingest_processor(cfg, engine)
    labels = yaml.safe_load(LABELS.read_text())
    jpg = (data_dir() / "images" / labels["image"]).read_bytes()
    sha = evidence_files.sha256_hex(jpg)
    assert processor.process(f"ioc/n/c/evidence/{sha}", jpg).kind == "evidence_stored"
    snap = [{"kind": "snapshot", "media_type": "image/jpeg", "sha256": sha, "size": len(jpg)}]
    to_publish = processor.process(
        event_topic("ioc", "node-hue-01", "cam-pub", "red_light"),
        make_event(type="red_light", camera="cam-pub", evidence=snap).to_json().encode(),
    ).report_id
    rejected = processor.process(
        event_topic("ioc", "node-hue-01", "cam-rej", "illegal_stopping"),
        make_event(camera="cam-rej").to_json().encode(),
    ).report_id
    now = datetime.now(UTC)
    ok = camera_health("node-hue-01", "cam-ok", now, overloaded=False, camera_moved=False)
    quiet = camera_health("node-hue-01", "cam-quiet", now, overloaded=False, camera_moved=False)
    processor.process(node_status_topic("ioc", "node-hue-01"), node_status("node-hue-01", now, {"cam-ok": ok}).to_json().encode())
    processor.process(camera_health_topic("ioc", "node-hue-01", "cam-quiet"), quiet.to_json().encode())
    with session_scope(make_session_factory(engine)) as s:
        s.execute(update(CameraHealthRow).where(CameraHealthRow.camera == "cam-quiet")
                  .values(updated_at=now - timedelta(minutes=5)))
        s.execute(update(ReportRow).where(ReportRow.id == rejected)
                  .values(status="rejected", reject_reason="bóng cây, không phải xe"))
    try:
        with live_server(create_app(cfg, engine=engine), port=port):
            yield {"base": f"http://127.0.0.1:{port}", "publish": to_publish, "rejected": rejected, "jpg": jpg,
                   "labels": labels}
    finally:
        engine.dispose()


def test_a_stale_camera_is_red_and_named_on_every_operator_page(console: dict[str, Any], browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    base = console["base"]
    _login(browser, base, "op")
    browser.get(f"{base}/queue")
    banner = browser.find_element(By.ID, "health-banner").text
    assert "1 camera cần kiểm tra" in banner and "node-hue-01/cam-quiet" in banner, banner
    browser.get(f"{base}/health")
    quiet = browser.find_element(By.CSS_SELECTOR, 'tr[data-camera="node-hue-01/cam-quiet"]')
    ok = browser.find_element(By.CSS_SELECTOR, 'tr[data-camera="node-hue-01/cam-ok"]')
    red = browser.execute_script("return getComputedStyle(arguments[0].cells[0]).backgroundColor", quiet)
    plain = browser.execute_script("return getComputedStyle(arguments[0].cells[0]).backgroundColor", ok)
    assert red != plain and red.startswith("rgb(255, 241, 240"), (red, plain)
    assert "(UTC+07:00)" in quiet.text and "trước / ago" in quiet.text  # local time, with its age
    SHOTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(SHOTS / "health.png"))


def test_an_admin_reopens_a_rejected_report_with_a_reason(console: dict[str, Any], browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    base, rid = console["base"], console["rejected"]
    _login(browser, base, "op")
    browser.get(f"{base}/reports/{rid}")
    assert "bóng cây, không phải xe" in browser.page_source  # the reason shows on the report
    assert not browser.find_elements(By.ID, "action-reopen")  # operators cannot reopen
    _login(browser, base, "admin")
    browser.get(f"{base}/reports/{rid}")
    form = browser.find_element(By.ID, "action-reopen").find_element(By.XPATH, "./ancestor::form")
    form.find_element(By.NAME, "reason").send_keys("xem lại: có xe đỗ thật")
    browser.find_element(By.ID, "action-reopen").click()
    _wait(browser, lambda d: "Mới" in d.find_element(By.ID, "status").text)
    history = browser.find_element(By.ID, "history").text
    assert "Mở lại" in history and "admin" in history and "xem lại: có xe đỗ thật" in history, history


def test_the_published_snapshot_shows_every_head_and_plate_blurred(console: dict[str, Any], browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    base, rid = console["base"], console["publish"]
    _login(browser, base, "op")
    browser.get(f"{base}/reports/{rid}")
    browser.find_element(By.ID, "action-confirm").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "action-publish"))
    browser.find_element(By.ID, "action-publish").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "action-unpublish"), timeout=120)  # blurring runs the models
    browser.delete_all_cookies()  # the public, not logged in
    browser.get(f"{base}/public/reports/")
    browser.find_element(By.CSS_SELECTOR, f"#public-{rid} a").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "img.snapshot"))
    img = browser.find_element(By.CSS_SELECTOR, "img.snapshot")
    _wait(browser, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img))
    assert "75A-123.45" not in browser.page_source  # no plate text on public pages
    browser.save_screenshot(str(SHOTS / "public.png"))
    shown = cv2.imdecode(np.frombuffer(httpx.get(img.get_attribute("src"), timeout=10).content, np.uint8), cv2.IMREAD_COLOR)
    before = cv2.imdecode(np.frombuffer(console["jpg"], np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape == before.shape
    for kind in ("heads", "plates"):
        for x, y in console["labels"][kind]:
            assert _detail(shown, x, y) < 0.4 * _detail(before, x, y), (kind, x, y)
