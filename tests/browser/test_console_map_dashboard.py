"""The map, the dashboard and the API docs in real headless Chromium, with no way out to the
Internet in the pages: every resource they load comes from central itself (vendored Leaflet,
Chart.js, Swagger UI), the map works without a tile server, and clicking a marker opens it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import update

from central.auth import create_user
from central.config import CentralConfig
from central.db import ReportRow, make_engine, make_session_factory, migrate, session_scope, utcnow
from central.web import create_app
from contract.topics import event_topic
from edge.local_broker import free_port
from tests.browser.test_central_console import PASSWORD, _login, _wait, browser  # noqa: F401 (fixture)
from tests.services import make_event
from tests.support.central import ingest_processor, live_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PLACES = [
    # camera, ward, lat, lon, type
    ("cam-le-loi", "Phường Thuận Hóa", 16.4637, 107.5909, "illegal_stopping"),
    ("cam-dai-noi", "Phường Phú Xuân", 16.4698, 107.5786, "red_light"),
    ("cam-dong-ba", "Phường Phú Xuân", 16.4733, 107.5880, "sidewalk_encroachment"),
]
SHOTS = Path("/tmp/console-shots")


@pytest.fixture
def console(tmp_path: Path) -> Iterator[dict[str, Any]]:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(url)
    port = free_port()
    cfg = CentralConfig.model_validate(
        {"database_url": url, "evidence_dir": str(tmp_path / "ev"), "web": {"host": "127.0.0.1", "port": port}}
    )
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        create_user(s, "op", PASSWORD, "operator")
    processor = ingest_processor(cfg, engine)
    ids = []
    for i, (camera, ward, lat, lon, vtype) in enumerate(PLACES):
        ev = make_event(
            type=vtype,
            camera=camera,
            started_at=utcnow() - timedelta(minutes=5 + i),
            location={"ward": ward, "address": "Huế", "lat": lat, "lon": lon},
        )
        ids.append(processor.process(event_topic("ioc", ev.node, camera, vtype), ev.to_json().encode()).report_id)
    with session_scope(make_session_factory(engine)) as s:
        s.execute(update(ReportRow).where(ReportRow.id == ids[1]).values(status="rejected"))
    try:
        with live_server(create_app(cfg, engine=engine), port=port):
            yield {"base": f"http://127.0.0.1:{port}", "ids": ids}
    finally:
        engine.dispose()


def _resources(driver: Any) -> list[str]:
    return driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")


def _only_this_origin(driver: Any, base: str) -> None:
    origin = urlsplit(base).netloc
    outside = [u for u in _resources(driver) if urlsplit(u).netloc not in (origin, "")]
    assert not outside, outside
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors, errors


def test_map_without_tiles_shows_cameras_open_reports_and_wards(console: dict[str, Any], browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    base, ids = console["base"], console["ids"]
    _login(browser, base, "op")
    browser.get(f"{base}/map")
    _wait(browser, lambda d: d.find_element(By.ID, "map").get_attribute("data-ready") == "1")
    assert "no-tiles" in browser.find_element(By.ID, "map").get_attribute("class")
    cameras = browser.find_elements(By.CSS_SELECTOR, "[data-camera]")
    reports = browser.find_elements(By.CSS_SELECTOR, "[data-report]")
    assert len(cameras) == 3
    # The rejected report is closed: only the two open ones are on the map.
    assert sorted(int(r.get_attribute("data-report")) for r in reports) == sorted([ids[0], ids[2]])
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".ward-label")]
    assert sorted(labels) == ["Phường Phú Xuân (1)", "Phường Thuận Hóa (1)"], labels
    SHOTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(SHOTS / "map.png"))
    _only_this_origin(browser, base)
    # Clicking a report's marker opens the report.
    target = next(r for r in reports if r.get_attribute("data-report") == str(ids[2]))
    browser.execute_script(
        "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", target
    )
    _wait(browser, lambda d: d.current_url.endswith(f"/reports/{ids[2]}"))


def test_dashboard_draws_its_charts_from_the_served_library(console: dict[str, Any], browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    base = console["base"]
    _login(browser, base, "op")
    browser.get(f"{base}/dashboard")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-charts") == "ready")
    assert browser.find_element(By.ID, "kpi-total").text == "3"
    assert browser.find_element(By.ID, "kpi-open").text == "2"
    # Each chart has ink on it (Chart.js drew), not a blank canvas.
    for chart in ("chart-trend", "chart-by_type", "chart-by_ward"):
        inked = browser.execute_script(
            "const c = document.getElementById(arguments[0]); const x = c.getContext('2d');"
            "const d = x.getImageData(0, 0, c.width, c.height).data; let n = 0;"
            "for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;",
            chart,
        )
        assert inked > 500, (chart, inked)
    rates = browser.find_element(By.ID, "rejection_by_type").text
    assert "100 %" in rates  # the one red-light report an operator decided was rejected
    browser.save_screenshot(str(SHOTS / "dashboard.png"))
    browser.execute_script("document.getElementById('chart-by_type').scrollIntoView()")
    browser.save_screenshot(str(SHOTS / "dashboard-counts.png"))
    _only_this_origin(browser, base)


def test_api_docs_render_offline_and_the_favicon_is_there(console: dict[str, Any], browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    base = console["base"]
    browser.get(f"{base}/api/docs")
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) > 20, timeout=30)
    assert browser.find_elements(By.CSS_SELECTOR, '[data-path="/api/dashboard"]')
    _only_this_origin(browser, base)
    icon = browser.execute_script(
        "return fetch('/favicon.ico').then(r => [r.status, r.headers.get('content-type')])"
    )
    assert icon == [200, "image/vnd.microsoft.icon"], icon
    editor = browser.execute_script("return fetch('/static/scene-editor.js').then(r => r.status)")
    assert editor == 200
