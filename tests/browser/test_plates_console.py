"""Plates in the console as people use it, in real headless Debian Chromium: an admin searches the
report list by a plate typed loosely and sees only that report with its plate and confidence, puts
a plate on the watch list through the page's form, and when a camera then reads that plate the
district's police see the alert in their live view, marked "watch list" with the note and the
crossing composite as its picture. Screenshots of each page are written to the test's tmp_path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central import evidence as evidence_files
from central.auth import create_user
from central.config import CentralConfig
from central.db import make_engine, make_session_factory, migrate, session_scope
from central.ingester import MessageProcessor
from central.web import create_app
from contract.topics import event_topic
from edge.data import data_dir
from edge.local_broker import free_port
from tests.browser.test_central_console import PASSWORD, _wait, browser  # noqa: F401 - the browser fixture
from tests.services import make_event
from tests.support.central import live_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

NOTE = "Xe liên quan vụ việc 118/CAP / vehicle wanted in case 118"


def _bike(plate: str, confidence: float) -> dict[str, Any]:
    return {
        "class_name": "motorcycle",
        "track_id": 3,
        "box": (100.0, 100.0, 200.0, 300.0),
        "confidence": 0.9,
        "plate": plate,
        "plate_read": {"text": plate, "confidence": confidence, "lines": 2, "crop_sha256": None},
    }


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
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "police-hue", PASSWORD, "police", ["Thành phố Huế"])
    processor = MessageProcessor(
        make_session_factory(engine), dialect_name="sqlite", evidence_dir=cfg.evidence_dir, topic_prefix="ioc", config=cfg
    )
    refs = []
    for kind, name in (("snapshot", "vn_intersection_redlight_day_1113.jpg"), ("composite", "vn_intersection_redlight_day_1113.jpg")):
        data = (data_dir() / "images" / name).read_bytes()
        if kind == "composite":
            data += b"\0composite"  # another file (sha256) with the same picture: JPEG readers stop at EOI
        sha = evidence_files.sha256_hex(data)
        assert processor.process(f"ioc/n/c/evidence/{sha}", data).kind == "evidence_stored"
        refs.append({"kind": kind, "media_type": "image/jpeg", "sha256": sha, "size": len(data)})

    def publish(camera: str, plate: str, confidence: float) -> int:
        event = make_event(type="red_light", camera=camera, objects=[_bike(plate, confidence)], evidence=refs)
        out = processor.process(event_topic("ioc", event.node, event.camera, "red_light"), event.to_json().encode())
        assert out.report_id is not None
        return out.report_id

    ids = {"29-B1 123.45": publish("cam-1", "29-B1 123.45", 0.97), "30A-123.45": publish("cam-2", "30A-123.45", 0.91)}
    try:
        with live_server(create_app(cfg, engine=engine), port=port):
            yield {"base": f"http://127.0.0.1:{port}", "ids": ids, "publish": publish, "composite": refs[1]["sha256"]}
    finally:
        engine.dispose()


def _login(driver: Any, base: str, user: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    _wait(driver, lambda d: "/login" not in d.current_url)


def test_plate_search_and_watch_list_in_the_console(
    console: dict[str, Any], browser: Any, tmp_path: Path  # noqa: F811 - the imported fixture
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, ids = console["base"], console["ids"]
    _login(browser, base, "admin")
    browser.get(f"{base}/reports")
    assert browser.find_elements(By.ID, f"report-{ids['30A-123.45']}")
    box = browser.find_element(By.ID, "filter-plate")
    box.send_keys("29b1 12345", Keys.ENTER)  # as an officer reads it off a notice
    _wait(browser, lambda d: "plate=" in d.current_url)
    row = browser.find_element(By.ID, f"report-{ids['29-B1 123.45']}")
    assert "29-B1 123.45" in row.text and "97%" in row.text
    assert not browser.find_elements(By.ID, f"report-{ids['30A-123.45']}")
    browser.save_screenshot(str(tmp_path / "plate_search.png"))

    # The watch list, from the header's link.
    browser.find_element(By.LINK_TEXT, "Biển số theo dõi").click()
    _wait(browser, lambda d: d.current_url.endswith("/watch-list"))
    browser.find_element(By.ID, "watch-plate").send_keys("51g 888.88")
    browser.find_element(By.ID, "watch-note").send_keys(NOTE)
    browser.find_element(By.ID, "watch-submit").click()
    entry = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-plate='51G88888']"))[0]
    assert "51g 888.88" in entry.text and NOTE in entry.text and "admin" in entry.text and "active" in entry.text
    browser.save_screenshot(str(tmp_path / "watch_list.png"))

    # Another camera reads the plate: the police view shows it at once, the composite as its picture.
    seen = console["publish"]("cam-3", "51G-888.88", 0.95)
    _login(browser, base, "police-hue")
    browser.get(f"{base}/police")
    alert = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.alert.watch-list"))[0]
    assert f"#{seen}" in alert.text and NOTE in alert.text and "WATCH LIST" in alert.text and "51G-888.88" in alert.text
    img = alert.find_element(By.TAG_NAME, "img")
    assert f"/evidence/{console['composite']}" in img.get_attribute("src")
    assert _wait(browser, lambda d: d.execute_script("return arguments[0].naturalWidth", img) > 0)
    browser.save_screenshot(str(tmp_path / "police_watch_alert.png"))
    # They may open the report the alert links (a watch-list hit is visible before any review).
    alert.find_element(By.PARTIAL_LINK_TEXT, f"#{seen}").click()
    _wait(browser, lambda d: d.current_url.endswith(f"/reports/{seen}"))
    assert "51G-888.88" in browser.find_element(By.ID, "plate").text
    assert browser.find_elements(By.ID, "watch-listed")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", browser.find_element(By.ID, "plate"))
    browser.save_screenshot(str(tmp_path / "report_plate.png"))
    # The police may not open the watch list itself.
    browser.get(f"{base}/watch-list")
    assert "51G" not in browser.page_source
