"""Two streams per camera, live: the RTSP test server serves a real clip as a camera's 1920x1080
main stream and its 640x360 sub-stream; the node analyses the sub-stream only, cuts the event's
clip from the main stream's packets (never decoded) and decodes the snapshot from the main stream
at the event's moment, with the offender's box on the object."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest

from contract.events import ViolationEvent
from edge.analyze import make_detector
from edge.config import DetectorConfig, NodeConfig, load_camera_config
from edge.data import video_path
from edge.node import EdgeNode
from pipelines.rtsp_server import RtspTestServer
from tests.services import unique_name, wait_until
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

VIDEO = "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4"  # red-light and stop-line acts
CAMERA_CONFIG = REPO_ROOT / "configs" / "cameras" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml"


@pytest.fixture(scope="module")
def main_stream() -> Path:
    """The clip as a camera's 1080p main stream (its own frame rate, 2 s GOP, no B-frames), made once."""
    src = video_path(VIDEO)
    if not src.is_file():
        pytest.skip("sample video missing (set EDGE_DATA_DIR)")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg missing")
    cache = Path(os.environ.get("EDGE_BENCH_CACHE") or Path.home() / ".cache" / "ioc-edge" / "bench")
    out = cache / f"{src.stem}_main1080p_native.mp4"
    if not out.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.stem}.{os.getpid()}.mp4")
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", "scale=1920:1080", "-c:v", "libx264",
             "-preset", "veryfast", "-bf", "0", "-g", "12", "-sc_threshold", "0", "-an", str(tmp)],
            check=True,
        )
        tmp.replace(out)
    return out


def _probe(path: Path) -> dict:
    return json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)], check=True, capture_output=True, text=True
    ).stdout)["streams"][0]


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_detect_on_the_sub_stream_record_from_the_main(mqtt_broker, tmp_path: Path, main_stream: Path) -> None:
    events: list[ViolationEvent] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("two-"), protocol=mqtt.MQTTv5)
    sub.on_connect = lambda c, *_: c.subscribe("ioc/two-node/+/events/+", qos=1)
    sub.on_message = lambda c, u, msg: events.append(ViolationEvent.model_validate(json.loads(msg.payload)))
    sub.connect("127.0.0.1", mqtt_broker.port)
    sub.loop_start()
    camera = load_camera_config(CAMERA_CONFIG)
    with RtspTestServer({"cam": str(main_stream)}, extra_args=["--sub-streams"]) as rtsp:
        camera = camera.model_copy(update={"camera": camera.camera.model_copy(
            update={"source": rtsp.url("cam", sub=True), "record_source": rtsp.url("cam")})})
        node = EdgeNode(NodeConfig.model_validate({
            "node": {"id": "two-node", "state_dir": str(tmp_path / "edge")},
            "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_broker.port}"},
            "cameras": [{"config": "unused.yaml"}],
            "status_interval_s": 1,
            "inference": {"workers": 1},
            "clips": {"pre_seconds": 2, "post_seconds": 2},
        }), [camera])
        runner = threading.Thread(target=node.run, daemon=True)
        runner.start()
        try:
            with_clip = wait_until(
                lambda: next((e for e in events if any(f.kind == "clip" for f in e.evidence) and e.objects), None),
                timeout=200, what="an event with its clip from the two-stream camera",
            )
            worker = node.workers[0]
            # Only the sub-stream is decoded: one rtspsrc, no packet branch; frames analysed at 640x360.
            desc = worker.source.pipeline_description
            assert desc.count("rtspsrc") == 1 and "/cam/sub" in desc and "name=packets" not in desc
            assert worker.reference_frame is not None and worker.reference_frame.shape[:2] == (360, 640)
        finally:
            node.stop()
            runner.join(15)
            sub.loop_stop()
            sub.disconnect()
    ev = with_clip
    clip_ref = next(f for f in ev.evidence if f.kind == "clip")
    clip = node.clips_dir / ev.camera / f"{clip_ref.sha256}.mp4"
    stream = _probe(clip)
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 1920, 1080)
    decode = subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-f", "null", "-"], capture_output=True, text=True)
    assert decode.returncode == 0 and not decode.stderr.strip(), decode.stderr

    folder = node.evidence_dir / ev.camera / ev.id
    clean = cv2.imread(str(folder / "snapshot_clean.jpg"))
    annotated = cv2.imread(str(folder / "snapshot.jpg"))
    assert clean is not None and clean.shape[:2] == (1080, 1920)
    assert annotated is not None and annotated.shape[1] == 1920 and annotated.shape[0] >= 1080  # + the stamp band
    # The box the event reports is in main-stream pixels and lies on the object: the detector run on
    # the main-stream snapshot itself finds an object of that class there.
    obj = ev.objects[0]
    box = tuple(float(v) for v in obj.box)
    dets = make_detector(DetectorConfig())(clean)
    best = max(
        (_iou(box, tuple(map(float, dets.xyxy[i]))) for i in range(len(dets))
         if dets.names[int(dets.class_id[i])] == obj.class_name),
        default=0.0,
    )
    assert best >= 0.5, f"no {obj.class_name} under the event's box {box} (best IoU {best:.2f})"
    # The annotated snapshot drew that box: red pixels along its top edge at main-stream scale.
    x1, y1, x2, _ = (int(v) for v in box)
    edge = annotated[max(0, y1 - 2): y1 + 3, x1:x2].reshape(-1, 3).astype(int)
    assert np.mean((edge[:, 2] > 180) & (edge[:, 1] < 80) & (edge[:, 0] < 80)) > 0.3
