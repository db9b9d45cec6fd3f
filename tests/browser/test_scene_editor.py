"""The scene editor as an admin uses it, in real headless Debian Chromium (Selenium), against a
running edge node: the node reports its camera's config and reference frame to central; the admin
opens the camera, draws a zone and a line with real mouse events on the reference frame, sees the
config checked, saves it; the stored version says who saved it, and the running node applies it
without a restart. The drawing page then shows the new scene. Everything is started here."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from central.auth import create_user
from central.config import CentralConfig
from central.db import make_engine, make_session_factory, migrate, session_scope
from central.services import scenes
from central.web import create_app
from edge.data import video_path
from edge.local_broker import free_port
from edge.scene_sync import picture_name
from tests.browser.test_central_console import PASSWORD, _login, _wait, browser  # noqa: F401 (fixture)
from tests.integration.live_node import VIDEO, camera, live_node
from tests.services import unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TOKEN = "scene-editor-upload-token-01"
NODE = "editor-node"
SHOT = Path("/tmp") / "scene-editor.png"


def test_admin_draws_a_zone_and_a_line_saves_and_the_running_node_applies_it(
    mqtt_broker: Any, browser: Any, tmp_path: Path  # noqa: F811
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    if not video_path(VIDEO).is_file():
        pytest.skip("sample video missing (set EDGE_DATA_DIR)")
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(db_url)
    port = free_port()
    cfg = CentralConfig.model_validate({"database_url": db_url, "evidence_dir": str(tmp_path / "ev"),
                                        "uploads": {"nodes": {NODE: TOKEN}}})
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
    server = uvicorn.Server(
        uvicorn.Config(create_app(cfg, engine=engine), host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    threading.Thread(target=server.run, daemon=True).start()
    wait_until(lambda: server.started, 20, what="uvicorn started")
    base = f"http://127.0.0.1:{port}"
    cam = camera()
    cam = cam.model_copy(update={"camera": cam.camera.model_copy(update={"analysis_fps": 2})})
    node = live_node(mqtt_broker.port, tmp_path / "edge", unique_name("p"), NODE, [cam],
                     upload={"url": base, "token": TOKEN, "retry_max_s": 2})
    assert node.scene_sync is not None
    node.scene_sync.interval_s = 0.5
    runner = threading.Thread(target=node.run, daemon=True)
    runner.start()
    cam_id = cam.camera.id
    try:
        def reported() -> bool:
            with sessions() as s:
                row = scenes.latest(s, NODE, cam_id)
                return row is not None and row.frame_sha256 is not None

        wait_until(reported, 90, what="the node's config and frame at central")
        _login(browser, base, "admin")
        browser.get(f"{base}/scenes")
        browser.find_element(By.CSS_SELECTOR, f'tr[data-camera="{NODE}/{cam_id}"] a').click()
        browser.find_element(By.ID, "edit").click()
        _wait(browser, lambda d: d.execute_script("return document.getElementById('editor-root').dataset.ready") == "1")
        _wait(browser, lambda d: d.find_element(By.ID, "check-state").text == "ok")
        svg = browser.find_element(By.ID, "canvas")
        browser.set_window_size(1280, 1400)
        browser.execute_script("arguments[0].scrollIntoView(true)", svg)
        box = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.width, r.height]", svg)
        left, top, w, h = box
        assert w > 200 and h > 300 and top >= 0 and top + h <= browser.execute_script("return window.innerHeight")

        def at(fx: float, fy: float) -> ActionChains:  # a point of the frame (fractions of it), in the viewport
            chain = ActionChains(browser)
            chain.w3c_actions.pointer_action.move_to_location(int(left + fx * w), int(top + fy * h))
            return chain

        browser.find_element(By.CSS_SELECTOR, '[data-tool="zone"]').click()
        browser.find_element(By.ID, "new-id").send_keys("bay")
        browser.find_element(By.CSS_SELECTOR, '#zone-kind option[value="no_stopping"], #zone-kind option:first-child').click()
        for fx, fy in ((0.2, 0.5), (0.6, 0.5), (0.6, 0.7), (0.2, 0.7)):
            at(fx, fy).click().perform()
        browser.find_element(By.ID, "finish").click()
        browser.find_element(By.CSS_SELECTOR, '[data-tool="line"]').click()
        browser.find_element(By.ID, "new-id").send_keys("entry")
        at(0.1, 0.4).click().perform()
        at(0.9, 0.4).click().perform()
        # A vertex dragged with the mouse: the zone's first corner moves down-left.
        browser.find_element(By.CSS_SELECTOR, '[data-tool="select"]').click()
        at(0.2, 0.5).click_and_hold().perform()
        at(0.1, 0.55).release().perform()
        # A lamp box dragged for head "main" (red), and four calibration points clicked.
        browser.find_element(By.CSS_SELECTOR, '[data-tool="lamp"]').click()
        at(0.70, 0.10).click_and_hold().perform()
        at(0.80, 0.15).release().perform()
        # And a green left-turn arrow of the same head below it.
        from selenium.webdriver.support.ui import Select

        Select(browser.find_element(By.ID, "lamp-color")).select_by_visible_text("green")
        Select(browser.find_element(By.ID, "lamp-arrow")).select_by_value("left")
        at(0.70, 0.20).click_and_hold().perform()
        at(0.80, 0.25).release().perform()
        browser.find_element(By.CSS_SELECTOR, '[data-tool="calib"]').click()
        for fx, fy in ((0.3, 0.8), (0.7, 0.8), (0.7, 0.95), (0.3, 0.95)):
            at(fx, fy).click().perform()
        # The drawn zone's kind changed in place: a no-parking bay after all.
        Select(browser.find_element(By.CSS_SELECTOR, 'select[data-zone-kind="bay"]')).select_by_value("no_parking")
        _wait(browser, lambda d: d.find_element(By.ID, "check-state").text == "ok")
        text = browser.find_element(By.ID, "yaml").text
        assert "id: bay" in text and "id: entry" in text, text
        browser.save_screenshot(str(SHOT))
        shown = browser.find_element(By.ID, "frame").get_attribute("src")  # the frame drawn on
        browser.find_element(By.ID, "save").click()
        saved = _wait(browser, lambda d: d.find_element(By.ID, "saved").get_attribute("data-version"))
        assert saved == "2"

        with sessions() as s:
            row = scenes.version(s, NODE, cam_id, 2)
            assert row is not None and row.origin == "console" and row.created_by == "admin"
            assert row.frame_sha256 is not None and shown.endswith(f"sha256={row.frame_sha256}"), shown
            stored = yaml.safe_load(row.yaml)
        zone = next(z for z in stored["scene"]["zones"] if z["id"] == "bay")
        assert zone["kind"] == "no_parking"
        # Where the mouse was, in reference pixels (720 x 1280), within a few pixels of rounding.
        expected = [(0.1 * 720, 0.55 * 1280), (0.6 * 720, 0.5 * 1280), (0.6 * 720, 0.7 * 1280), (0.2 * 720, 0.7 * 1280)]
        for (x, y), (ex, ey) in zip(zone["polygon"], expected, strict=True):
            assert abs(x - ex) <= 8 and abs(y - ey) <= 8, (zone["polygon"], expected)
        [head] = stored["scene"]["signals"]
        assert head["id"] == "main" and head["lamps"][0]["color"] == "red" and "arrow" not in head["lamps"][0]
        assert head["lamps"][1]["color"] == "green" and head["lamps"][1]["arrow"] == "left"
        for got, want in zip(head["lamps"][0]["box"], (0.7 * 720, 0.1 * 1280, 0.8 * 720, 0.15 * 1280), strict=True):
            assert abs(got - want) <= 8, head
        calib = stored["scene"]["calibration"]
        assert len(calib["image_points"]) == 4 and calib["ground_points_m"] == [[0, 0], [3.5, 0], [3.5, 10], [0, 10]]
        assert abs(calib["image_points"][2][0] - 0.7 * 720) <= 8 and abs(calib["image_points"][2][1] - 0.95 * 1280) <= 8
        line = next(ln for ln in stored["scene"]["lines"] if ln["id"] == "entry")
        assert line["points"][0][0] < line["points"][1][0]  # drawn left to right: its direction kept

        def applied() -> bool:
            with sessions() as s:
                r = scenes.version(s, NODE, cam_id, 2)
                return r is not None and r.state == "applied"

        wait_until(applied, 60, what="the running node applied version 2")
        worker = node.workers[0]
        assert "bay" in [z.id for z in worker.camera.scene.zones] and worker.supervisor.restarts == 0
        # The node runs it on the picture the admin drew on (issue 14).
        ref = worker.camera.scene.reference_image
        assert ref is not None and ref.name == picture_name(cam_id, row.frame_sha256, (720, 1280)) and ref.is_file()
        browser.get(f"{base}/scenes/{NODE}/{cam_id}")
        assert "applied" in browser.find_element(By.CSS_SELECTOR, 'tr[data-version="2"] .state').text
        img = browser.find_element(By.ID, "drawing")
        assert _wait(browser, lambda d: d.execute_script("return arguments[0].naturalWidth", img) == 720)
    finally:
        node.stopping.set()
        runner.join(30)
        node.stop()
        server.should_exit = True
        engine.dispose()
