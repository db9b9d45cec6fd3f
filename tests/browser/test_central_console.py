"""The console as a person uses it, in real headless Debian Chromium (Selenium + chromedriver):
an operator logs in, opens the review queue, plays the clip inline, confirms with the keyboard and
sees the report forwarded; police of another district do not see it, the district's police do.

Everything is started here: a temp SQLite database, a clip cut from the sample footage with
ffmpeg, uvicorn on a free port. Every wait is bounded.
"""

from __future__ import annotations

import subprocess
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
from edge.data import data_dir, video_path
from edge.local_broker import free_port
from tests.services import make_event
from tests.support.central import live_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PASSWORD = "browser-test-password-1"
VIDEO = "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4"


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
            "review": {"undo_seconds": 0},  # confirm forwards at once (the window: test_review_police_browser)
        }
    )
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        create_user(s, "op", PASSWORD, "operator")
        create_user(s, "police-hue", PASSWORD, "police", ["Thành phố Huế"])
        create_user(s, "police-hk", PASSWORD, "police", ["Quận Hoàn Kiếm"])
    processor = MessageProcessor(
        make_session_factory(engine),
        dialect_name="sqlite",
        evidence_dir=cfg.evidence_dir,
        topic_prefix="ioc",
        config=cfg,
    )
    # A real H.264 clip (stream copy of 4 s of the sample footage, moov first) and a real snapshot.
    clip_path = tmp_path / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-ss",
            "20",
            "-t",
            "4",
            "-i",
            str(video_path(VIDEO)),
            "-an",
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(clip_path),
        ],
        check=True,
        timeout=60,
    )
    files = {
        "clip": clip_path.read_bytes(),
        "snapshot": (data_dir() / "images" / "vn_intersection_redlight_day_1113.jpg").read_bytes(),
    }
    refs = []
    for kind, data in files.items():
        sha = evidence_files.sha256_hex(data)
        assert processor.process(f"ioc/n/c/evidence/{sha}", data).kind == "evidence_stored"
        media = "video/mp4" if kind == "clip" else "image/jpeg"
        refs.append({"kind": kind, "media_type": media, "sha256": sha, "size": len(data)})
    event = make_event(type="red_light", evidence=refs)  # Huế: Thành phố Huế police
    report_id = processor.process(
        event_topic("ioc", event.node, event.camera, "red_light"), event.to_json().encode()
    ).report_id
    try:
        with live_server(create_app(cfg, engine=engine), port=port):
            yield {"base": f"http://127.0.0.1:{port}", "report_id": report_id}
    finally:
        engine.dispose()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.fail("Debian chromium and chromium-driver are needed (scripts/setup.sh installs them)", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1000",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, cond: Any, timeout: float = 15) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # A form post reloads the page: an element found just before the new page replaced it is stale
    # (a CI run failed so); ask again rather than fail.
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(cond)


def _login(driver: Any, base: str, user: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    _wait(driver, lambda d: "/login" not in d.current_url)


PLAY = """
const done = arguments[arguments.length - 1];
const v = arguments[0];
const report = (why) => done({why, currentTime: v.currentTime, width: v.videoWidth, error: v.error ? v.error.code : null});
v.addEventListener('error', () => report('error'));
v.addEventListener('timeupdate', () => { if (v.currentTime > 1.0) report('played'); });
setTimeout(() => report('timeout'), 20000);
v.muted = true;
v.play().catch(e => done({why: 'play() refused: ' + e}));
"""


def test_operator_confirms_in_the_queue_and_only_the_districts_police_see_it(
    console: dict[str, Any], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    base, rid = console["base"], console["report_id"]
    _login(browser, base, "op")
    browser.get(f"{base}/queue")
    item = browser.find_element(By.ID, f"q-{rid}")
    assert "selected" in item.get_attribute("class")  # the first (urgent) item has the keyboard focus
    video = item.find_element(By.CSS_SELECTOR, "video.clip")
    snapshot = item.find_element(By.CSS_SELECTOR, "img")
    assert _wait(browser, lambda d: d.execute_script("return arguments[0].naturalWidth", snapshot) > 0)
    result = browser.execute_async_script(PLAY, video)
    assert result["why"] == "played" and result["error"] is None and result["width"] == 640, result

    browser.find_element(By.TAG_NAME, "body").send_keys("c")  # the confirm shortcut
    _wait(browser, lambda d: not d.find_elements(By.ID, f"q-{rid}"))  # back on the queue, done
    browser.get(f"{base}/reports/{rid}")
    status = browser.find_element(By.ID, "status").text
    assert "Đã chuyển xử lý" in status and "Forwarded" in status
    history = browser.find_element(By.ID, "history").text
    assert "op" in history and "Xác nhận" in history and "Chuyển xử lý" in history  # actions in words
    assert "Phòng CSGT Công an thành phố Huế" in browser.find_element(By.ID, "agency").text

    _login(browser, base, "police-hk")  # police of another district
    browser.get(f"{base}/police")
    assert not browser.find_elements(By.ID, f"report-{rid}")
    _wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    browser.get(f"{base}/reports/{rid}")
    assert "404" in browser.find_element(By.TAG_NAME, "h1").text
    assert "75A-123.45" not in browser.page_source

    _login(browser, base, "police-hue")
    browser.get(f"{base}/police")
    assert browser.find_elements(By.ID, f"report-{rid}")
    # The live alert feed (polled by the page) shows the alert with its plate.
    row = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.alert"))[0]
    assert f"#{rid}" in row.text and "75A-123.45" in row.text
