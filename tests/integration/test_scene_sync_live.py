"""A running edge node and central's scene versions (issue 15): the node reports each camera's
config and reference frame to central over HTTP; a version an admin saves is fetched, validated,
written atomically and applied between frames without a restart; a version the node cannot run
(a model file it lacks) is refused with the error, and the old config keeps running; the applied
version survives a restart. The frame the admin drew on comes with the version (issue 14): the
node fetches it, checks it, writes it beside the scene as its `scene.reference_image`, and the
running analysis registers to it; a version whose picture central does not have or that does
not verify is refused. Real central (uvicorn, SQLite), a real node on a file camera."""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
import uvicorn
import yaml
from fastapi.testclient import TestClient

from central.auth import create_user
from central.config import CentralConfig
from central.db import make_engine, make_session_factory, migrate, session_scope
from central.services import scenes
from central.web import create_app
from edge.data import video_path
from edge.local_broker import free_port
from edge.scene_sync import picture_name, write_atomically
from tests.integration.live_node import VIDEO, camera, live_node
from tests.services import unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TOKEN = "scene-sync-upload-token-0123"
NODE = "scene-node"


def test_a_console_version_is_applied_by_the_running_node_and_a_bad_one_refused(mqtt_broker, tmp_path: Path):
    if not video_path(VIDEO).is_file():
        pytest.skip("sample video missing (set EDGE_DATA_DIR)")
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(db_url)
    cfg = CentralConfig.model_validate(
        {"database_url": db_url, "evidence_dir": str(tmp_path / "ev"), "uploads": {"nodes": {NODE: TOKEN}}}
    )
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(cfg, engine=engine), host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    threading.Thread(target=server.run, daemon=True).start()
    wait_until(lambda: server.started, what="central web started")
    cam = camera()
    cam = cam.model_copy(update={"camera": cam.camera.model_copy(update={"analysis_fps": 2})})
    cam_id = cam.camera.id
    upload = {"url": f"http://127.0.0.1:{port}", "token": TOKEN, "retry_max_s": 2}
    node = live_node(mqtt_broker.port, tmp_path / "edge", unique_name("p"), NODE, [cam], upload=upload)
    assert node.scene_sync is not None
    node.scene_sync.interval_s = 0.5
    runner = threading.Thread(target=node.run, daemon=True)
    runner.start()
    try:
        def reported():
            with sessions() as s:
                row = scenes.latest(s, NODE, cam_id)
                return row if row is not None and row.frame_sha256 else None

        first = wait_until(reported, 90, what="the node's config and reference frame at central")
        assert first.origin == "edge" and first.state == "running" and first.version == 1
        running = yaml.safe_load(first.yaml)
        assert "source" not in running["camera"]  # an RTSP URL would carry the camera's password
        with sessions() as s:
            frame = scenes.latest_frame(s, NODE, cam_id)
            assert frame is not None and (frame.width, frame.height) == (720, 1280)  # upright, as analysed
            assert frame.jpeg[:2] == b"\xff\xd8"

        # An admin adds a no-stopping bay and watches it, drawn on the frame the editor shows.
        edited = yaml.safe_load(first.yaml)
        edited["scene"]["zones"].append({"id": "bay", "kind": "no_stopping", "polygon": [[100, 600], [400, 600], [400, 900], [100, 900]]})
        edited["rules"]["illegal_stopping"]["zones"] = ["walkway", "bay"]
        drawn_on = first.frame_sha256
        with sessions() as s:
            drawn_jpeg = s.get(scenes.SceneFrameRow, drawn_on).jpeg
        row, checked = scenes.save(sessions, NODE, cam_id, edited, "admin-a", base_version=1, frame_sha256=drawn_on)
        assert checked.ok and row is not None and row.version == 2 and row.state == "pending"
        assert row.frame_sha256 == drawn_on

        def state(v: int) -> str | None:
            with sessions() as s:
                r = scenes.version(s, NODE, cam_id, v)
                return r.state if r is not None else None

        wait_until(lambda: state(2) == "applied", 60, what="the node applied version 2")
        worker = node.workers[0]
        assert [z.id for z in worker.camera.scene.zones] == ["walkway", "brick_sidewalk", "bay"]
        assert worker.camera.camera.source == cam.camera.source  # the node's own source kept
        assert node.workers[0].is_alive() and worker.supervisor.restarts == 0  # no restart
        # The analyzer rebuilt its rules with the new zone at a frame after the swap.
        wait_until(lambda: worker.analyzer is not None and worker.analyzer.rules is not None
                   and worker.analyzer.camera is worker.camera, 30, what="rules rebuilt")
        saved = tmp_path / "edge" / "scenes" / f"{cam_id}.yaml"
        assert "bay" in saved.read_text(encoding="utf-8")
        # The picture it was drawn on is beside the scene, byte for byte, and is its reference_image.
        picture = saved.parent / picture_name(cam_id, drawn_on, (720, 1280))
        assert yaml.safe_load(saved.read_text(encoding="utf-8"))["scene"]["reference_image"] == picture.name
        assert picture.read_bytes() == drawn_jpeg and hashlib.sha256(picture.read_bytes()).hexdigest() == drawn_on
        assert worker.camera.scene.reference_image == picture.resolve()
        # The running analysis registers to it (no restart): its anchor is that picture, and the
        # first frame is placed on it once the looped file comes round to the view it shows.
        registrar = worker.analyzer.registrar
        assert registrar._anchor_image is not None
        assert np.array_equal(registrar._anchor_image, cv2.imread(str(picture), cv2.IMREAD_COLOR))
        wait_until(lambda: worker.analyzer.registrar.anchored, 60, what="frames placed on the drawn picture")
        with sessions() as s:  # the node's report after applying matches v2: no extra edge version
            assert scenes.latest(s, NODE, cam_id).version == 2

        # A version central accepts but this node cannot run: its helmet model is not here.
        bad = yaml.safe_load(yaml.safe_dump(edited))
        bad["rules"]["no_helmet"] = {"model": "no_such_helmet_model.onnx"}
        row3, checked3 = scenes.save(sessions, NODE, cam_id, bad, "admin-a", base_version=2)
        assert checked3.ok and row3 is not None
        wait_until(lambda: state(3) == "refused", 60, what="the node refused version 3")
        with sessions() as s:
            r3 = scenes.version(s, NODE, cam_id, 3)
            assert "rules.no_helmet.model" in (r3.error or "") and "model file not found" in (r3.error or "")
        assert worker.camera.rules.no_helmet is None and [z.id for z in worker.camera.scene.zones][-1] == "bay"
        assert "no_such_helmet" not in saved.read_text(encoding="utf-8")

        # A version whose picture does not verify (central's copy is not the frame its sha256
        # names), and one whose picture central does not have: refused, v2 and its picture run on.
        narrower = yaml.safe_load(yaml.safe_dump(edited))
        narrower["scene"]["zones"][-1]["polygon"] = [[100, 600], [300, 600], [300, 900], [100, 900]]
        corrupt_sha = hashlib.sha256(b"the frame central lost").hexdigest()
        with session_scope(sessions) as s:
            s.add(scenes.SceneFrameRow(sha256=corrupt_sha, node=NODE, camera=cam_id, jpeg=drawn_jpeg[:-4096] + b"x",
                                       width=720, height=1280, received_at=first.created_at))
        row4, _ = scenes.save(sessions, NODE, cam_id, narrower, "admin-a", base_version=3, frame_sha256=corrupt_sha)
        assert row4 is not None
        wait_until(lambda: state(4) == "refused", 60, what="the node refused version 4 (picture does not verify)")
        missing_sha = hashlib.sha256(b"a frame central never had").hexdigest()
        with session_scope(sessions) as s:  # as if central lost the frame after the version was saved
            assert scenes.latest(s, NODE, cam_id).version == 4
            s.add(scenes.SceneVersionRow(
                node=NODE, camera=cam_id, version=5, yaml=row4.yaml, origin="console", created_by="admin-a",
                created_at=first.created_at, frame_sha256=missing_sha, state="pending", state_at=first.created_at))
        wait_until(lambda: state(5) == "refused", 60, what="the node refused version 5 (no picture)")
        with sessions() as s:
            e4, e5 = scenes.version(s, NODE, cam_id, 4).error or "", scenes.version(s, NODE, cam_id, 5).error or ""
        assert "scene.reference_image" in e4 and f"is not the frame {corrupt_sha}" in e4, e4
        assert "scene.reference_image" in e5 and f"central has no frame {missing_sha}" in e5, e5
        assert worker.camera.scene.reference_image == picture.resolve()
        assert worker.camera.scene.zones[-1].polygon[1] == (400, 600)
        assert worker.analyzer.registrar._anchor_image is registrar._anchor_image
        assert sorted(p.name for p in saved.parent.iterdir()) == sorted([saved.name, f"{cam_id}.version", picture.name])

        # A debug recording asked for on MQTT reaches the console's camera page as a link.
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("ask-"), protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", mqtt_broker.port)
        pub.loop_start()
        try:
            pub.publish(f"{node.prefix}/{NODE}/{cam_id}/debug/record", b'{"seconds": 2}', qos=1).wait_for_publish(10)
        finally:
            pub.loop_stop()
            pub.disconnect()

        def uploaded():
            with sessions() as s:
                return scenes.recordings(s, NODE, cam_id)

        [video] = wait_until(uploaded, 60, what="the debug video at central")
        local = next((tmp_path / "edge" / "debug" / cam_id).glob("*.mp4"))
        assert Path(video.path).read_bytes() == local.read_bytes() and video.size == local.stat().st_size
        with session_scope(sessions) as s:
            create_user(s, "op", "operator-password-1", "operator")
        console = TestClient(create_app(cfg, engine=engine))
        form = console.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        console.post("/login", data={"username": "op", "password": "operator-password-1", "csrf_token": token})
        link = f"/scenes/{NODE}/{cam_id}/debug/{video.sha256}.mp4"
        assert link in console.get(f"/scenes/{NODE}/{cam_id}").text
        got = console.get(link)
        assert got.status_code == 200 and got.headers["content-type"] == "video/mp4"
        assert got.content == local.read_bytes()
        assert TestClient(create_app(cfg, engine=engine)).get(link).status_code == 401
    finally:
        node.stopping.set()
        runner.join(30)
        node.stop()
        server.should_exit = True

    # A restart runs the console's version (on top of the camera's own file).
    again = live_node(mqtt_broker.port, tmp_path / "edge", "p", NODE, [cam])
    try:
        assert [z.id for z in again.cameras[0].scene.zones][-1] == "bay"
        assert again.cameras[0].scene.reference_image == picture.resolve()  # and the picture it was drawn on
    finally:
        again.outbox.close()
        again.inference.close()
        engine.dispose()


def test_a_saved_scene_replaces_the_file_in_one_rename_and_keeps_the_previous(tmp_path: Path):
    write_atomically(tmp_path, "cam-1", "a: 1\n", 2)
    write_atomically(tmp_path, "cam-1", "a: 2\n", 3)
    assert (tmp_path / "cam-1.yaml").read_text().endswith("a: 2\n")
    assert (tmp_path / "cam-1.prev.yaml").read_text().endswith("a: 1\n")
    assert (tmp_path / "cam-1.version").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam-1.prev.yaml", "cam-1.version", "cam-1.yaml"]
