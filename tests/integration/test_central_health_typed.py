"""The health page and /api/health from typed status messages (contract.status): analysis fps vs
target, lag, last frame, overload, reconnects, camera moved, with units; older untyped payloads
still read; a message that breaks the contract is logged and stored, never fatal."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from central.config import CentralConfig
from central.db import make_engine
from central.ingester import MessageProcessor
from central.web import create_app
from contract.status import CameraHealth, NodeStatus
from contract.topics import camera_health_topic, node_status_topic
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def camera_health(node: str, camera: str, at: datetime, **overrides: Any) -> CameraHealth:
    values: dict[str, Any] = {
        "node": node,
        "camera": camera,
        "state": "streaming",
        "at": at,
        "reconnects": 2,
        "restarts": 1,
        "last_frame_at": at - timedelta(seconds=1),
        "frames_decoded": 640,
        "frames_delivered": 320,
        "analysed_frames": 318,
        "slots_missed": 2,
        "frames_gated": 100,
        "analysis_fps": 3.7,
        "analysis_fps_target": 5.0,
        "lag_ms_p50": 120.4,
        "lag_ms_max": 980.0,
        "overloaded": True,
        "camera_moved": True,
        "last_error": None,
    }
    values.update(overrides)
    return CameraHealth.model_validate(values)


def node_status(node: str, at: datetime, cameras: dict[str, CameraHealth]) -> NodeStatus:
    return NodeStatus.model_validate(
        {
            "node": node,
            "state": "online",
            "at": at,
            "uptime_s": 3600.5,
            "outbox_backlog": 4,
            "outbox_oldest_s": 2.5,
            "published": 120,
            "held_no_subscriber": 0,
            "disk_full": False,
            "cameras": cameras,
        }
    )


@pytest.fixture
def center(central_database_url: str, tmp_path: Path) -> tuple[MessageProcessor, TestClient]:
    cfg = CentralConfig.model_validate({"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev")})
    engine = make_engine(cfg.database_url)
    processor = ingest_processor(cfg, engine)
    return processor, TestClient(create_app(cfg, engine=engine))


def test_health_shows_the_typed_live_values(center: Any, central_users: Any, console_login: Any) -> None:
    processor, client = center
    now = datetime.now(UTC)
    cam = camera_health("node-t", "cam-1", now - timedelta(seconds=5))
    fresh = camera_health("node-t", "cam-1", now, analysis_fps=4.8, lag_ms_p50=95.0, overloaded=False)
    other = camera_health("node-t", "cam-2", now, state="reconnecting", analysis_fps=None, lag_ms_p50=None,
                          lag_ms_max=None, last_frame_at=None, overloaded=False, camera_moved=False,
                          last_error="rtsp: connection refused")
    assert processor.process(node_status_topic("ioc", "node-t"), node_status("node-t", now, {"cam-1": fresh, "cam-2": other})
                             .to_json().encode()).reason == "typed"
    # An older health message of cam-1 arriving later does not hide the node status' fresher values.
    assert processor.process(camera_health_topic("ioc", "node-t", "cam-1"), cam.to_json().encode()).reason == "typed"

    console_login(client, "op")
    h = client.get("/api/health").json()
    (node,) = h["nodes"]
    assert node["online"] and node["typed"] and node["uptime_s"] == 3600.5 and node["outbox_backlog"] == 4
    cams = {c["camera"]: c for c in h["cameras"]}
    one = cams["cam-1"]
    assert one["typed"] and one["state"] == "streaming"
    assert one["analysis_fps"] == 4.8 and one["fps"] == 4.8 and one["analysis_fps_target"] == 5.0
    assert one["lag_ms_p50"] == 95.0 and one["lag_ms_max"] == 980.0 and one["overloaded"] is False
    assert one["reconnects"] == 2 and one["restarts"] == 1 and one["camera_moved"] is True
    assert one["last_frame_at"] and 0 <= one["last_frame_age_s"] < 60
    two = cams["cam-2"]
    assert two["state"] == "reconnecting" and two["analysis_fps"] is None and two["last_error"] == "rtsp: connection refused"

    page = client.get("/health").text
    row = re.search(r'<tr data-camera="node-t/cam-1"[^>]*>.*?</tr>', page, re.S).group(0)
    assert "4.8 fps / 5.0 fps" in row and "95 ms, max 980 ms" in row
    assert "camera moved" in row and "overloaded" not in row
    assert re.search(r"<td>2 <span class=\"en\">\(khởi động lại / restarts 1\)</span></td>", row)
    row2 = re.search(r'<tr data-camera="node-t/cam-2"[^>]*>.*?</tr>', page, re.S).group(0)
    assert "reconnecting" in row2 and "rtsp: connection refused" in row2 and "— / 5.0 fps" in row2
    assert '<td class="uptime">1 h 0 min</td>' in page and "(cũ nhất / oldest 2 s)" in page
    # Times in the console's zone (Asia/Ho_Chi_Minh), not UTC ISO.
    assert "(UTC+07:00)" in row and "+00:00" not in row


def test_overload_from_the_camera_health_topic(center: Any, central_users: Any, console_login: Any) -> None:
    processor, client = center
    now = datetime.now(UTC)
    processor.process(node_status_topic("ioc", "node-o"), node_status("node-o", now - timedelta(seconds=8), {
        "cam-9": camera_health("node-o", "cam-9", now - timedelta(seconds=8), overloaded=False, analysis_fps=5.0),
    }).to_json().encode())
    health = camera_health("node-o", "cam-9", now - timedelta(seconds=4))
    processor.process(camera_health_topic("ioc", "node-o", "cam-9"), health.to_json().encode())
    console_login(client, "admin")
    (cam,) = client.get("/api/health").json()["cameras"]
    assert cam["overloaded"] is True and cam["analysis_fps"] == 3.7  # the newer message wins
    row = re.search(r'<tr data-camera="node-o/cam-9"[^>]*>.*?</tr>', client.get("/health").text, re.S).group(0)
    assert "quá tải / overloaded" in row and "3.7 fps / 5.0 fps" in row
    # The camera drops: its newest health has no rate and no lag any more, and the page says so.
    down = camera_health("node-o", "cam-9", now, state="reconnecting", analysis_fps=None, lag_ms_p50=None,
                         lag_ms_max=None, overloaded=False, reconnects=3)
    processor.process(camera_health_topic("ioc", "node-o", "cam-9"), down.to_json().encode())
    (cam,) = client.get("/api/health").json()["cameras"]
    assert cam["state"] == "reconnecting" and cam["analysis_fps"] is None and cam["lag_ms_p50"] is None
    assert cam["overloaded"] is False and cam["reconnects"] == 3


def test_an_invalid_typed_status_is_logged_and_stored(
    center: Any, central_users: Any, console_login: Any, caplog: pytest.LogCaptureFixture
) -> None:
    processor, client = center
    broken = b'{"schema": "ioc.node_status/1", "node": "node-x", "state": "online", "outbox_backlog": 3}'
    with caplog.at_level(logging.WARNING, logger="central.services.health"):
        out = processor.process(node_status_topic("ioc", "node-x"), broken)
    assert out.kind == "status" and out.reason == "invalid"
    assert "status_invalid" in caplog.text and "node-x" in caplog.text
    # Another node's camera in a typed health message: logged, not trusted as typed.
    wrong = camera_health("node-y", "cam-1", datetime.now(UTC)).to_json().encode()
    assert processor.process(camera_health_topic("ioc", "node-x", "cam-1"), wrong).reason == "invalid"
    # An older node's untyped dict and a bare last will still read.
    assert processor.process(node_status_topic("ioc", "node-old"), b'{"state": "online", "uptime_s": 5}').reason == "untyped"
    assert processor.process(node_status_topic("ioc", "node-gone"), b"offline").reason == "untyped"
    console_login(client, "op")
    nodes = {n["node"]: n for n in client.get("/api/health").json()["nodes"]}
    assert nodes["node-x"]["outbox_backlog"] == 3 and not nodes["node-x"]["typed"]
    assert nodes["node-old"]["online"] and nodes["node-old"]["uptime_s"] == 5
    assert nodes["node-gone"]["state"] == "offline" and not nodes["node-gone"]["online"]


def test_health_of_a_real_edge_node(
    mqtt_broker: Any, central_database_url: str, tmp_path: Path, central_users: Any, console_login: Any
) -> None:
    """What a real node publishes (a file camera under the live node) reaches the page typed."""
    import io
    import threading

    from central.ingester import Ingester
    from edge.data import video_path
    from tests.integration.live_node import VIDEO, camera, live_node
    from tests.services import unique_name, wait_until

    if not video_path(VIDEO).is_file():
        pytest.skip("sample video missing (set EDGE_DATA_DIR)")
    prefix = unique_name("h")
    cfg = CentralConfig.model_validate({
        "database_url": central_database_url, "evidence_dir": str(tmp_path / "ev"),
        "mqtt": {"url": mqtt_broker.url, "topic_prefix": prefix, "share_group": unique_name("g")},
    })
    engine = make_engine(central_database_url)
    ingester = Ingester(cfg, engine=engine, console=io.StringIO()).start()
    node = live_node(mqtt_broker.port, tmp_path / "edge", prefix, "health-node", [camera(camera_id="cam-live")])
    runner = threading.Thread(target=node.run, daemon=True)
    try:
        assert ingester.wait_subscribed(10)
        runner.start()
        client = TestClient(create_app(cfg, engine=engine, ingester=ingester))
        console_login(client, "op")

        def live_camera() -> dict[str, Any] | None:
            cams = [c for c in client.get("/api/health").json()["cameras"] if c["camera"] == "cam-live"]
            return cams[0] if cams and cams[0]["typed"] and (cams[0]["analysis_fps"] or 0) > 0 else None

        cam = wait_until(live_camera, 90, interval=0.5, what="the live camera's analysis fps on /api/health")
        assert cam["node"] == "health-node" and cam["state"] == "streaming"
        assert cam["analysis_fps_target"] == 5 and cam["last_frame_at"] and cam["lag_ms_p50"] is not None
        assert cam["reconnects"] == 0 and cam["overloaded"] in (True, False) and cam["camera_moved"] is False
        (status,) = [n for n in client.get("/api/health").json()["nodes"] if n["node"] == "health-node"]
        assert status["typed"] and status["online"] and status["uptime_s"] > 0 and status["cameras"] == 1
        assert ingester.counters.status_invalid == 0
        row = re.search(r'<tr data-camera="health-node/cam-live"[^>]*>.*?</tr>', client.get("/health").text, re.S).group(0)
        assert re.search(r"\d+\.\d fps / 5\.0 fps", row), row
    finally:
        node.stop()
        runner.join(15)
        ingester.stop()
        engine.dispose()


def test_stale_and_offline_turn_red_with_an_operator_notice(
    central_database_url: str, central_users: Any, console_login: Any, tmp_path: Path
) -> None:
    """A camera not heard for `health.camera_stale_after_s` is stale, one whose node went silent
    for `health.node_offline_after_s` is offline: red on the health page, named in the banner on
    every operator page (queue included), worst first; a healthy camera raises nothing."""
    from sqlalchemy import update

    from central.db import CameraHealthRow, NodeStatusRow, make_session_factory, session_scope

    cfg = CentralConfig.model_validate(
        {
            "database_url": central_database_url,
            "evidence_dir": str(tmp_path / "ev"),
            "health": {"camera_stale_after_s": 30, "node_offline_after_s": 90},
        }
    )
    engine = make_engine(cfg.database_url)
    try:
        processor = ingest_processor(cfg, engine)
        now = datetime.now(UTC)
        ok = camera_health("node-h", "cam-ok", now, overloaded=False, camera_moved=False)
        quiet = camera_health("node-h", "cam-quiet", now, overloaded=False, camera_moved=False)
        gone = camera_health("node-g", "cam-gone", now, overloaded=False, camera_moved=False)
        for node, cams in (("node-h", {"cam-ok": ok}), ("node-g", {"cam-gone": gone})):
            processor.process(node_status_topic("ioc", node), node_status(node, now, cams).to_json().encode())
        processor.process(camera_health_topic("ioc", "node-h", "cam-quiet"), quiet.to_json().encode())
        with session_scope(make_session_factory(engine)) as s:
            # cam-quiet last heard 45 s ago (> 30 s); node-g last heard 100 s ago (> 90 s).
            s.execute(update(CameraHealthRow).where(CameraHealthRow.camera == "cam-quiet")
                      .values(updated_at=now - timedelta(seconds=45)))
            s.execute(update(NodeStatusRow).where(NodeStatusRow.node == "node-g")
                      .values(updated_at=now - timedelta(seconds=100)))
        client = TestClient(create_app(cfg, engine=engine))
        console_login(client, "op")
        cams = {c["camera"]: c for c in client.get("/api/health").json()["cameras"]}
        assert cams["cam-ok"]["alarm"] is None
        assert cams["cam-quiet"]["alarm"] == "stale" and cams["cam-quiet"]["updated_age_s"] >= 45
        assert cams["cam-gone"]["alarm"] == "offline"
        page = client.get("/health").text
        assert 'data-camera="node-h/cam-ok" data-alarm="" class=""' in page
        assert 'data-camera="node-h/cam-quiet" data-alarm="stale" class="alarm"' in page
        assert 'data-camera="node-g/cam-gone" data-alarm="offline" class="alarm"' in page
        notices = re.search(r'<div class="card notices" id="notices">.*?</div>', page, re.S).group(0)
        assert notices.index("node-g / cam-gone") < notices.index("node-h / cam-quiet")  # offline first
        assert "cam-ok" not in notices
        queue = client.get("/queue").text
        banner = re.search(r'<div class="card" id="health-banner".*?</div>', queue, re.S).group(0)
        assert "2 camera cần kiểm tra" in banner and "node-g/cam-gone — Mất kết nối với nút biên" in banner
    finally:
        engine.dispose()
