"""The regions-of-interest pass on real footage: a person on the sidewalk that the full-frame pass
loses, found at native resolution; a node's inference pool runs a frame and its tiles in one call.

Labelled by looking at the frame (vn_haiphong_truccat_junction_sidewalk_vendor_elevated.mp4,
1280x720, analysed at 5 fps, the 11th analysed frame, t = 2.0 s): on the right-hand sidewalk a man
in a white shirt sits on a red stool by the sticky-rice vendor's sign, about 60 px tall, box
(1164, 418)-(1223, 479). The full-frame pass (long side 640: half the camera's pixels) boxes the
people standing at the vendor but not him.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.analyze import make_detector
from edge.config import DetectorConfig, load_camera_config
from edge.data import video_path
from edge.geometry import box_iou
from edge.pipeline import build_zones
from edge.regions import RegionsPass
from edge.sources import VideoFileSource
from tests.support import REPO_ROOT

CONFIG = REPO_ROOT / "configs" / "cameras" / "vn_haiphong_truccat_junction_sidewalk_vendor_elevated.yaml"
SEATED = np.array([1164, 418, 1223, 479], np.float32)
FRAME_INDEX = 10


@pytest.fixture(scope="module")
def scene():
    cam = load_camera_config(CONFIG)
    video = video_path(cam.camera.source or "")
    if not video.is_file():
        pytest.skip(f"no {video} (EDGE_DATA_DIR)")
    for i, frame in enumerate(VideoFileSource(video, cam.camera.analysis_fps).frames()):
        if i == FRAME_INDEX:
            return cam, frame.image
    pytest.fail("clip shorter than labelled")


def _people(det) -> np.ndarray:
    return det.xyxy[det.class_names() == "person"]


def test_the_seated_man_on_the_sidewalk_is_found_with_the_pass_only(scene) -> None:
    cam, image = scene
    h, w = image.shape[:2]
    detector = make_detector(DetectorConfig())
    zones = build_zones(cam, (w, h))
    full = detector(image)
    assert not any(box_iou(b, SEATED) >= 0.3 for b in _people(full))

    rp = RegionsPass(detector, cam.regions_pass.model_copy(update={"enabled": True}), cam.scene, lambda: zones)
    merged = rp(image)
    assert rp.tiles and all((t[2] - t[0], t[3] - t[1]) == (640, 640) for t in rp.tiles)  # native pixels
    found = [b for b in _people(merged) if box_iou(b, SEATED) >= 0.5]
    assert len(found) == 1
    ground = np.array([[(found[0][0] + found[0][2]) / 2, found[0][3]]])
    assert zones[0].contains(ground)[0]  # the sidewalk zone
    # Nothing the full-frame pass saw is lost and nothing is boxed twice.
    for i in range(len(full)):
        same = merged.class_id == full.class_id[i]
        assert any(box_iou(b, full.xyxy[i]) >= 0.3 for b in merged.xyxy[same])
    for k in np.unique(merged.class_id):
        boxes = merged.xyxy[merged.class_id == k]
        assert not any(box_iou(a, b) >= 0.7 for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_the_inference_pool_runs_a_frame_and_its_tiles_in_one_call(scene) -> None:
    from edge.inference import InferencePool

    cam, image = scene
    pool = InferencePool(lambda: make_detector(DetectorConfig()), workers=2, max_batch=2)
    try:
        rp = RegionsPass(pool, cam.regions_pass.model_copy(update={"enabled": True}), cam.scene)
        merged = rp(image)
        runs_before = pool.stats.snapshot()["requests"]
        assert runs_before == 1 + len(rp.tiles)
        alone = RegionsPass(make_detector(DetectorConfig()), rp.config, cam.scene)(image)
        assert len(merged) == len(alone)
        assert np.allclose(np.sort(merged.xyxy, axis=0), np.sort(alone.xyxy, axis=0), atol=1.0)
    finally:
        pool.close()
