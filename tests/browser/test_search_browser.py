"""Search in the console as an operator uses it, in real headless Debian Chromium (issue 17, items
3 and 12): typing "cau giay" (no accents, lower case) in the search box lists the Cầu Giấy reports
only, with their count; the search combines with the type filter; a search that matches nothing
says so ("Không có phản ánh khớp bộ lọc"), not "No reports yet"; "next page" walks the results
newest first with nothing lost or repeated. Screenshots go to the test's tmp_path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from central.auth import create_user
from central.config import CentralConfig
from central.db import make_engine, make_session_factory, migrate, session_scope
from central.ingester import MessageProcessor
from central.web import create_app
from contract.topics import event_topic
from edge.local_broker import free_port
from tests.browser.test_central_console import PASSWORD, _wait, browser  # noqa: F401 - the browser fixture
from tests.browser.test_plates_console import _login
from tests.services import make_event
from tests.support.central import live_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


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
    processor = MessageProcessor(
        make_session_factory(engine), dialect_name="sqlite", evidence_dir=cfg.evidence_dir, topic_prefix="ioc", config=cfg
    )
    t0 = make_event().started_at
    ids: dict[str, list[int]] = {"cau_giay": [], "cua_nam": []}
    # Five Cầu Giấy reports (two types) and three Cửa Nam ones, one camera each (one report each).
    places = [("cau_giay", "Phường Cầu Giấy", "Xuân Thủy", "illegal_stopping" if i % 2 else "red_light") for i in range(5)]
    places += [("cua_nam", "Phường Cửa Nam", "Hàng Bài", "red_light") for _ in range(3)]
    for i, (key, ward, street, vtype) in enumerate(places):
        event = make_event(
            camera=f"cam-{i}", type=vtype, started_at=t0 + timedelta(minutes=i),
            location={"ward": ward, "address": f"{i + 1} {street}", "lat": 21.03, "lon": 105.79},
        )
        out = processor.process(event_topic("ioc", event.node, event.camera, vtype), event.to_json().encode())
        assert out.report_id is not None
        ids[key].append(out.report_id)
    try:
        with live_server(create_app(cfg, engine=engine), port=port):
            yield {"base": f"http://127.0.0.1:{port}", "ids": ids}
    finally:
        engine.dispose()


def _rows(driver: Any) -> list[int]:
    from selenium.webdriver.common.by import By

    return [int(re.sub(r"\D", "", r.get_attribute("id"))) for r in driver.find_elements(By.CSS_SELECTOR, "tr[id^=report-]")]


def test_search_box_filters_pages_and_says_when_nothing_matches(
    console: dict[str, Any], browser: Any, tmp_path: Path  # noqa: F811 - the imported fixture
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import Select

    base, ids = console["base"], console["ids"]
    _login(browser, base, "op")
    browser.get(f"{base}/reports")
    assert set(_rows(browser)) == {*ids["cau_giay"], *ids["cua_nam"]}

    browser.find_element(By.ID, "filter-q").send_keys("cau giay", Keys.ENTER)  # no accents, lower case
    _wait(browser, lambda d: "q=cau+giay" in d.current_url)
    assert set(_rows(browser)) == set(ids["cau_giay"])
    assert "5 phản ánh khớp bộ lọc" in browser.find_element(By.ID, "result-count").text
    assert browser.find_element(By.ID, "filter-q").get_attribute("value") == "cau giay"
    browser.save_screenshot(str(tmp_path / "search_cau_giay.png"))

    # Combined with the type filter.
    Select(browser.find_element(By.NAME, "type")).select_by_value("red_light")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    _wait(browser, lambda d: "type=red_light" in d.current_url)
    assert set(_rows(browser)) == set(ids["cau_giay"][0::2])  # the red-light ones of Cầu Giấy

    # Nothing matches: the page says so, and offers to clear the filters.
    box = browser.find_element(By.ID, "filter-q")
    box.clear()
    box.send_keys("Hoàn Kiếm", Keys.ENTER)
    empty = _wait(browser, lambda d: d.find_elements(By.ID, "no-match"))[0]
    assert "Không có phản ánh khớp bộ lọc" in empty.text
    assert "No reports yet" not in browser.page_source and not _rows(browser)
    browser.save_screenshot(str(tmp_path / "search_no_match.png"))

    # Pages of three: next, next, until the last; newest first, each report once.
    browser.get(f"{base}/reports?limit=3")
    seen: list[int] = []
    for _ in range(5):
        seen += _rows(browser)
        nxt = browser.find_elements(By.ID, "page-next")
        if not nxt:
            break
        nxt[0].click()
        _wait(browser, staleness_of(nxt[0]))
    assert seen == sorted({*ids["cau_giay"], *ids["cua_nam"]}, reverse=True)
    assert browser.find_elements(By.ID, "page-first")  # back to the newest from a later page
    browser.save_screenshot(str(tmp_path / "search_last_page.png"))
