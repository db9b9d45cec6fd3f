"""The live path with clips: a sample video served as an RTSP camera -> the edge node (one RTSP
connection feeding both detection and the packet buffer) -> an event published only once its
clip exists -> the clip uploaded over HTTP to central, intact, playable, faststart."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import uvicorn

from central.config import CentralConfig
from central.db import EvidenceRow, make_engine, make_session_factory, migrate
from central.web import create_app
from contract.events import ViolationEvent
from edge.config import NodeConfig, load_camera_config
from edge.data import video_path
from edge.local_broker import free_port
from edge.node import EdgeNode
from pipelines.rtsp_server import RtspTestServer
from tests.services import mp4_top_level_boxes, unique_name, wait_until
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

VIDEO = "vn_paved_parking_area_motorbike.mp4"  # a car parks on the walkway: one illegal_stopping event
TOKEN = "live-test-upload-token-0123"




def test_live_event_carries_an_uploaded_clip(mqtt_broker, tmp_path: Path) -> None:
    if not video_path(VIDEO).is_file():
        pytest.skip("sample video missing (set EDGE_DATA_DIR)")
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(db_url)
    cfg = CentralConfig.model_validate(
        {"database_url": db_url, "evidence_dir": str(tmp_path / "central-ev"), "uploads": {"nodes": {"live-node": TOKEN}}}
    )
    engine = make_engine(db_url)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cfg, engine=engine), host="127.0.0.1", port=port,
                                           log_config=None, lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    wait_until(lambda: server.started, what="central web started")

    events: list[ViolationEvent] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("live-"), protocol=mqtt.MQTTv5)
    sub.on_connect = lambda c, *_: c.subscribe("ioc/live-node/+/events/+", qos=1)
    sub.on_message = lambda c, u, msg: events.append(ViolationEvent.model_validate(json.loads(msg.payload)))
    sub.connect("127.0.0.1", mqtt_broker.port)
    sub.loop_start()

    camera = load_camera_config(REPO_ROOT / "configs" / "cameras" / "vn_paved_parking_area_motorbike.yaml")
    with RtspTestServer({"cam": str(video_path(VIDEO))}) as rtsp:
        camera = camera.model_copy(update={"camera": camera.camera.model_copy(update={"source": rtsp.url("cam")})})
        node_cfg = NodeConfig.model_validate({
            "node": {"id": "live-node", "state_dir": str(tmp_path / "edge")},
            "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_broker.port}"},
            "cameras": [{"config": "unused.yaml"}],
            "status_interval_s": 1,
            "clips": {"pre_seconds": 3, "post_seconds": 3},
            "upload": {"url": f"http://127.0.0.1:{port}", "token": TOKEN, "retry_max_s": 2},
        })
        node = EdgeNode(node_cfg, [camera])
        runner = threading.Thread(target=node.run, daemon=True)
        runner.start()
        try:
            wait_until(lambda: events, timeout=90, what="an event from the live node")
            source = node.workers[0].source
            # One RTSP connection per camera: one rtspsrc, split after the parser.
            assert source.pipeline_description.count("rtspsrc") == 1 and "name=packets" in source.pipeline_description
            # Event first: it goes out as soon as the edge decides, before the post-event footage
            # exists; the same event (same id) follows with its clip.
            first = events[0]
            assert first.evidence_pending == ["clip"]
            assert {"snapshot", "snapshot_clean"} <= {e.kind for e in first.evidence}
            assert "clip" not in {e.kind for e in first.evidence}
            event = wait_until(
                lambda: next((e for e in events[1:] if e.id == first.id), None), timeout=30, what="the event's clip"
            )
            assert event.evidence_pending == [] and event.evidence[: len(first.evidence)] == first.evidence
            clips = [e for e in event.evidence if e.kind == "clip"]
            assert len(clips) == 1 and clips[0].media_type == "video/mp4"
            ref = clips[0]

            def at_central() -> EvidenceRow | None:
                with make_session_factory(engine)() as s:
                    return s.get(EvidenceRow, ref.sha256)

            row = wait_until(at_central, timeout=30, what="clip uploaded to central")
            wait_until(lambda: node.outbox.upload_backlog() == (0, 0), timeout=10, what="upload acknowledged")
        finally:
            node.stop()
            runner.join(15)
            sub.loop_stop()
            sub.disconnect()
            server.should_exit = True
    data = (cfg.evidence_dir / row.path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == ref.sha256 and len(data) == ref.size == row.size
    boxes = mp4_top_level_boxes(data)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(data)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(clip)],
        check=True, capture_output=True, text=True).stdout)
    assert probe["streams"][0]["codec_name"] == "h264"
    assert float(probe["format"]["duration"]) >= 3 + 3 - 0.5  # pre + post, from a keyframe at or before
    decode = subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-f", "null", "-"], capture_output=True, text=True)
    assert decode.returncode == 0 and not decode.stderr.strip(), decode.stderr
    engine.dispose()
