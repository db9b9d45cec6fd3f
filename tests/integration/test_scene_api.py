"""Central's scene API and pages (issue 15), on SQLite and PostgreSQL: nodes report with their
upload token only; versions are kept, never overwritten; the check gives `check-config`'s errors;
only admins save (with CSRF), from the latest version; the node's refusal is recorded; the drawing
is the edge's, on the node's frame."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from central.config import CentralConfig
from central.db import make_engine
from central.web import create_app
from contract.configfile import ConfigError
from edge.config import load_camera_config
from edge.data import data_dir
from tests.conftest import CONSOLE_PASSWORD

pytestmark = pytest.mark.integration

TOKEN = "scene-api-upload-token-0123"
CAMERA: dict[str, Any] = {
    "camera": {"id": "cam-1", "source": "rtsp://admin:secret@10.0.0.9/stream", "analysis_fps": 5},
    "scene": {
        "reference_size": [640, 640],
        "zones": [{"id": "box", "kind": "no_stopping", "polygon": [[100, 300], [400, 300], [400, 600], [100, 600]]}],
        "lines": [{"id": "stop", "points": [[50, 250], [600, 250]]}],
    },
    "rules": {"illegal_stopping": {"zones": ["box"], "max_stop_seconds": 5}},
}


def _login(client: TestClient, user: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": user, "password": CONSOLE_PASSWORD, "csrf_token": token})
    return client.get("/api/me").json()["csrf"]


@pytest.fixture
def app(central_database_url: str, central_users: Any, tmp_path: Path) -> Any:
    cfg = CentralConfig.model_validate({"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev"),
                                        "uploads": {"nodes": {"node-1": TOKEN, "node-2": TOKEN[::-1]}}})
    engine = make_engine(central_database_url)
    yield create_app(cfg, engine=engine)
    engine.dispose()


def test_scene_versions_from_node_report_to_admin_edit_to_node_refusal(app: Any, tmp_path: Path) -> None:
    jpeg = (data_dir() / "images" / "vn_intersection_redlight_day_1113.jpg").read_bytes()
    node = TestClient(app)
    body = {"yaml": yaml.safe_dump(CAMERA), "frame_jpeg_b64": base64.b64encode(jpeg).decode()}
    assert node.put("/api/v1/scenes/cam-1", json=body).status_code == 401
    assert node.put("/api/v1/scenes/cam-1", json=body, auth=("node-1", "wrong-token-0123456")).status_code == 401
    r = node.put("/api/v1/scenes/cam-1", json=body, auth=("node-1", TOKEN))
    assert r.status_code == 200 and r.json() == {"version": 1, "state": "running"}
    # The same config again (a restart): no new version.
    assert node.put("/api/v1/scenes/cam-1", json=body, auth=("node-1", TOKEN)).json()["version"] == 1

    op, admin = TestClient(app), TestClient(app)
    _login(op, "op")
    csrf = _login(admin, "admin")
    scene = op.get("/api/scenes/node-1/cam-1").json()
    assert scene["version"] == 1 and scene["frame_size"] == [640, 640]
    assert "source" not in scene["config"]["camera"] and "secret" not in scene["yaml"]  # no camera password
    page = op.get("/scenes")
    assert page.status_code == 200 and 'data-camera="node-1/cam-1"' in page.text
    assert 'id="edit"' not in op.get("/scenes/node-1/cam-1").text  # operators view, admins edit
    assert 'id="edit"' in admin.get("/scenes/node-1/cam-1").text
    png = op.get("/scenes/node-1/cam-1/drawing.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    drawn = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_COLOR)
    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape == frame.shape
    inside = np.abs(drawn[400:500, 200:300].astype(int) - frame[400:500, 200:300].astype(int)).mean()
    outside = np.abs(drawn[20:60, 300:340].astype(int) - frame[20:60, 300:340].astype(int)).mean()
    assert inside > 10 > outside, (inside, outside)  # the zone is drawn where it is, not elsewhere
    assert TestClient(app).get("/scenes/node-1/cam-1/drawing.png").status_code == 401

    # The check gives check-config's errors (file and key path), with the "did you mean".
    bad = yaml.safe_load(yaml.safe_dump(CAMERA))
    bad["rules"]["illegal_stopping"]["max_stop_secnds"] = 3
    assert op.post("/api/scenes/node-1/cam-1/check", json={"config": bad}).status_code == 403
    checked = admin.post("/api/scenes/node-1/cam-1/check", json={"config": bad}).json()
    (tmp_path / "cam-1.yaml").write_text(yaml.safe_dump({**bad, "camera": {"id": "cam-1", "analysis_fps": 5}}))
    with pytest.raises(ConfigError) as cli:
        load_camera_config(tmp_path / "cam-1.yaml")
    expected = [line.strip().replace(str(tmp_path / "cam-1.yaml"), "node-1/cam-1.yaml") for line in str(cli.value).splitlines()]
    assert checked["ok"] is False and checked["errors"] == expected
    assert any("did you mean 'max_stop_seconds'" in e for e in checked["errors"])

    edited = yaml.safe_load(yaml.safe_dump(scene["config"]))
    edited["scene"]["lines"][0]["points"] = [[600, 250], [50, 250]]  # reversed
    assert admin.post("/api/scenes/node-1/cam-1/versions", json={"config": edited}).status_code == 403  # no CSRF
    assert op.post("/api/scenes/node-1/cam-1/versions", json={"config": edited},
                   headers={"X-CSRF-Token": csrf}).status_code == 403
    h = {"X-CSRF-Token": csrf}
    r = admin.post("/api/scenes/node-1/cam-1/versions", json={"config": bad, "base_version": 1}, headers=h)
    assert r.status_code == 422 and r.json()["errors"] == expected
    r = admin.post("/api/scenes/node-1/cam-1/versions", json={"config": edited, "base_version": 1}, headers=h)
    assert r.status_code == 201 and r.json()["version"] == 2 and r.json()["created_by"] == "admin"
    stale = admin.post("/api/scenes/node-1/cam-1/versions", json={"config": edited, "base_version": 1}, headers=h)
    assert stale.status_code == 409 and "version 2" in stale.json()["detail"]

    # Each node sees only its own cameras' pending versions.
    assert node.get("/api/v1/scenes", auth=("node-2", TOKEN[::-1])).json()["cameras"] == {}
    want = node.get("/api/v1/scenes", auth=("node-1", TOKEN)).json()["cameras"]
    assert list(want) == ["cam-1"] and want["cam-1"]["version"] == 2
    assert yaml.safe_load(want["cam-1"]["yaml"])["scene"]["lines"][0]["points"] == [[600, 250], [50, 250]]
    # The node refuses it (say, a model file it lacks): recorded, nothing pending, v1 still what runs.
    r = node.put("/api/v1/scenes/cam-1", auth=("node-1", TOKEN),
                 json={"yaml": yaml.safe_dump(CAMERA), "refused": 2, "error": "cam-1.yaml: rules.x: model file not found"})
    assert r.status_code == 200 and r.json()["version"] == 1
    assert node.get("/api/v1/scenes", auth=("node-1", TOKEN)).json()["cameras"] == {}
    history = op.get("/scenes/node-1/cam-1").text
    assert "refused" in history and "model file not found" in history
    # A node cannot mark another camera's or an edge version as applied.
    assert node.put("/api/v1/scenes/cam-1", auth=("node-1", TOKEN),
                    json={"yaml": yaml.safe_dump(CAMERA), "applied": 1}).status_code == 422


def test_the_console_button_asks_the_node_for_a_bounded_debug_recording(
    central_database_url: str, central_users: Any, mqtt_broker: Any, tmp_path: Path
) -> None:
    import json

    from central.services.scenes import MAX_DEBUG_SECONDS
    from contract.mqtt import MqttClient, MqttSettings
    from edge.debug_video import MAX_RECORD_SECONDS
    from tests.services import unique_name, wait_until

    assert MAX_DEBUG_SECONDS == MAX_RECORD_SECONDS  # the console refuses what the node would
    prefix = unique_name("p")
    cfg = CentralConfig.model_validate({
        "database_url": central_database_url, "evidence_dir": str(tmp_path / "ev"),
        "uploads": {"nodes": {"node-1": TOKEN}}, "mqtt": {"url": mqtt_broker.url, "topic_prefix": prefix},
    })
    engine = make_engine(central_database_url)
    got: list[tuple[str, dict]] = []
    subscribed: list = []
    listener = MqttClient(MqttSettings(mqtt_broker.url, unique_name("l-")),
                          on_connect=lambda *_a: listener.subscribe([f"{prefix}/+/+/debug/record"]),
                          on_subscribed=subscribed.append,
                          on_message=lambda _c, _u, m: got.append((m.topic, json.loads(m.payload))))
    listener.start()
    try:
        app = create_app(cfg, engine=engine)
        node = TestClient(app)
        assert node.put("/api/v1/scenes/cam-1", json={"yaml": yaml.safe_dump(CAMERA)},
                        auth=("node-1", TOKEN)).status_code == 200
        wait_until(lambda: subscribed, 10, what="listener subscribed")
        op, admin = TestClient(app), TestClient(app)
        op_csrf, csrf = _login(op, "op"), _login(admin, "admin")
        assert 'id="debug-record"' in admin.get("/scenes/node-1/cam-1").text
        url = "/scenes/node-1/cam-1/debug-record"
        assert op.post(url, data={"csrf_token": op_csrf, "seconds": "10"}, follow_redirects=False).status_code == 403
        assert admin.post(url, data={"seconds": "10"}, follow_redirects=False).status_code == 403  # no CSRF
        too_long = admin.post(url, data={"csrf_token": csrf, "seconds": "500"}, follow_redirects=False)
        assert too_long.status_code == 422 and "120" in too_long.text
        assert admin.post("/scenes/node-1/cam-9/debug-record", data={"csrf_token": csrf, "seconds": "5"},
                          follow_redirects=False).status_code == 404
        r = admin.post(url, data={"csrf_token": csrf, "seconds": "15"}, follow_redirects=False)
        assert r.status_code == 303 and "debug_requested=15" in r.headers["location"]
        wait_until(lambda: got, 10, what="the request on the broker")
        assert got == [(f"{prefix}/node-1/cam-1/debug/record", {"seconds": 15.0})]
        assert 'id="debug-requested"' in admin.get(r.headers["location"]).text
    finally:
        listener.stop()
        engine.dispose()


def test_a_console_version_carries_the_frame_it_was_drawn_on_to_its_node(app: Any) -> None:
    """Issue 14: the version records the uploaded frame the editor showed (not whichever came last),
    and the node fetches that picture with its own upload token only, by its sha256."""
    import hashlib

    images = data_dir() / "images"
    shown = (images / "vn_intersection_redlight_day_1113.jpg").read_bytes()
    ok, later = cv2.imencode(".jpg", cv2.flip(cv2.imread(str(images / "vn_intersection_redlight_day_1113.jpg")), 1))
    assert ok
    later_jpeg = later.tobytes()
    other = (images / "vn_intersection_day_2039.jpg").read_bytes()
    sha = {name: hashlib.sha256(b).hexdigest() for name, b in (("shown", shown), ("later", later_jpeg), ("other", other))}
    # The node's file names a reference picture of its own (a path on the node, opaque to central).
    running = yaml.safe_load(yaml.safe_dump(CAMERA))
    running["scene"]["reference_image"] = "/srv/ioc/cameras/cam-1-ref.jpg"
    node = TestClient(app)
    n1, n2 = ("node-1", TOKEN), ("node-2", TOKEN[::-1])

    def report(frame: bytes, auth: tuple[str, str] = n1, camera: str = "cam-1") -> Any:
        cfg = {**running, "camera": {**running["camera"], "id": camera}}
        r = node.put(f"/api/v1/scenes/{camera}", auth=auth,
                     json={"yaml": yaml.safe_dump(cfg), "frame_jpeg_b64": base64.b64encode(frame).decode()})
        assert r.status_code == 200, r.text
        return r.json()

    assert report(shown) == {"version": 1, "state": "running"}
    report(other, n2, "cam-2")  # another node's camera
    admin = TestClient(app)
    h = {"X-CSRF-Token": _login(admin, "admin")}
    # The editor opens: the frame it shows is named by its sha256.
    scene = admin.get("/api/scenes/node-1/cam-1").json()
    assert scene["frame_sha256"] == sha["shown"]
    assert admin.get(scene["frame"]).content == shown
    # Meanwhile the node sends a newer frame (same config: still version 1): the console's latest.
    assert report(later_jpeg)["version"] == 1
    assert admin.get("/scenes/node-1/cam-1/frame.jpg").content == later_jpeg
    assert admin.get("/api/scenes/node-1/cam-1").json()["frame_sha256"] == sha["later"]

    edited = yaml.safe_load(yaml.safe_dump(scene["config"]))
    edited["scene"]["lines"][0]["points"] = [[600, 250], [50, 250]]
    url = "/api/scenes/node-1/cam-1/versions"
    for bad in ("0" * 64, sha["other"]):  # no such frame; another camera's frame
        r = admin.post(url, json={"config": edited, "base_version": 1, "frame_sha256": bad}, headers=h)
        assert r.status_code == 422 and "no uploaded frame" in r.json()["detail"], r.text
    assert admin.post(url, json={"config": edited, "frame_sha256": "not-a-sha"}, headers=h).status_code == 422
    r = admin.post(url, json={"config": edited, "base_version": 1, "frame_sha256": sha["shown"]}, headers=h)
    assert r.status_code == 201 and r.json()["version"] == 2 and r.json()["frame_sha256"] == sha["shown"], r.text
    # Its picture is that frame: the node's old reference path is not part of the version.
    assert "reference_image" not in yaml.safe_load(r.json()["yaml"])["scene"]
    drawing = admin.get("/scenes/node-1/cam-1/drawing.png?version=2")
    drawn = cv2.imdecode(np.frombuffer(drawing.content, np.uint8), cv2.IMREAD_COLOR)
    frame = cv2.imdecode(np.frombuffer(shown, np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(drawn[20:60, 300:340].astype(int) - frame[20:60, 300:340].astype(int)).mean() < 10  # on `shown`

    # The node is told which picture, and fetches it with its token: byte for byte.
    want = node.get("/api/v1/scenes", auth=n1).json()["cameras"]["cam-1"]
    assert want["version"] == 2 and want["frame"] == {
        "sha256": sha["shown"], "url": f"/api/v1/scenes/cam-1/frames/{sha['shown']}", "width": 640, "height": 640}
    got = node.get(want["frame"]["url"], auth=n1)
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg" and got.content == shown
    assert node.get(want["frame"]["url"]).status_code == 401
    assert node.get(want["frame"]["url"], auth=("node-1", "wrong-token-0123456")).status_code == 401
    assert node.get(want["frame"]["url"], auth=n2).status_code == 404  # not node-2's camera
    assert node.get(f"/api/v1/scenes/cam-2/frames/{sha['other']}", auth=n1).status_code == 404
    assert node.get(f"/api/v1/scenes/cam-2/frames/{sha['other']}", auth=n2).content == other
    assert node.get(f"/api/v1/scenes/cam-1/frames/{'0' * 64}", auth=n1).status_code == 404
    assert node.get("/api/v1/scenes/cam-1/frames/xyz", auth=n1).status_code == 404

    # The node applies it (its report names no console picture path): still version 2, applied.
    assert node.put("/api/v1/scenes/cam-1", auth=n1, json={"yaml": r.json()["yaml"], "applied": 2}).json() == {
        "version": 2, "state": "applied"}
    # An API client that names no frame: the camera's latest.
    r = admin.post(url, json={"config": edited, "base_version": 2}, headers=h)
    assert r.status_code == 201 and r.json()["frame_sha256"] == sha["later"]
