"""The scene follows a swaying camera: stop lines and signal lamp boxes are moved with the zones by
the frame's registration to the reference view (edge.registration), so a few pixels of sway
neither move the line a crossing is judged on nor take a ~15 px lamp out of its box.

Real material: a red-phase frame of the Hanoi clip (labels: red from frame 3 to 254), shifted and
turned by known amounts as a swaying pole would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from edge.analyze import make_detector
from edge.config import DetectorConfig, load_camera_config
from edge.data import video_path
from edge.frames import Frame
from edge.pipeline import CameraAnalyzer
from edge.rules.signals import SignalState
from edge.rules.traffic import RedLightRule
from edge.sources import VideoFileSource
from tests.support import REPO_ROOT

CONFIG = REPO_ROOT / "configs" / "cameras" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml"
RED_FRAME = 30
BASE = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def red_frame() -> np.ndarray:
    cam = load_camera_config(CONFIG)
    video = video_path(cam.camera.source or "")
    if not video.is_file():
        pytest.skip(f"no {video} (EDGE_DATA_DIR)")
    for i, frame in enumerate(VideoFileSource(video, cam.camera.analysis_fps).frames()):
        if i == RED_FRAME:
            return frame.image
    pytest.fail("clip shorter than expected")


def swayed(img: np.ndarray, dx: float, dy: float, deg: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT), m


def run(frames: list[np.ndarray]) -> CameraAnalyzer:
    analyzer = CameraAnalyzer("test", load_camera_config(CONFIG), make_detector(DetectorConfig()))
    for k, image in enumerate(frames):
        t = k / 6.0
        analyzer.process(Frame(image=image, pts=t, wall_time=t, index=k), BASE + timedelta(seconds=t))
    return analyzer


def _red_light(analyzer: CameraAnalyzer) -> RedLightRule:
    assert analyzer.rules is not None
    return next(r for r in analyzer.rules if isinstance(r, RedLightRule))


def test_the_stop_line_and_the_lamps_move_with_the_view_and_back(red_frame):
    moved, m = swayed(red_frame, 9.0, -6.0, 0.6)
    analyzer = run([red_frame, red_frame, moved])
    rule = _red_light(analyzer)
    ref_a, ref_b, ref_boxes = None, None, None
    for line, a, b in analyzer._lines_ref:
        if line is rule.line:
            ref_a, ref_b = a, b
    for head, boxes in analyzer._lamps_ref:
        if head.id == "head-right":
            ref_boxes = boxes
    assert ref_a is not None and ref_boxes is not None
    for ref, now in ((ref_a, rule.line.a), (ref_b, rule.line.b)):
        assert np.abs(m[:, :2] @ ref + m[:, 2] - now).max() < 1.5
    head = rule.board.heads["head-right"]
    for (_, box), (_, ref) in zip(head.lamp_boxes, ref_boxes, strict=True):
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        ref_centre = np.array([(ref[0] + ref[2]) / 2, (ref[1] + ref[3]) / 2])
        assert np.abs(m[:, :2] @ ref_centre + m[:, 2] - centre).max() < 1.5
    # Back at the preset: the drawn places again.
    analyzer.process(Frame(image=red_frame, pts=0.5, wall_time=0.5, index=3), BASE + timedelta(seconds=0.5))
    assert np.abs(rule.line.a - ref_a).max() < 1.0
    assert [b for _, b in head.lamp_boxes] == [b for _, b in ref_boxes] or all(
        max(abs(p - q) for p, q in zip(b, r, strict=True)) <= 1
        for (_, b), (_, r) in zip(head.lamp_boxes, ref_boxes, strict=True)
    )


def test_the_red_lamp_still_reads_red_when_the_pole_sways(red_frame):
    # A 12 px sway (a lamp box is 15 px): the red lamp would leave its drawn box.
    frames = [red_frame] + [swayed(red_frame, 12.0 * (k % 2), -4.0 * (k % 2), 0.0)[0] for k in range(1, 13)]
    analyzer = run(frames)
    reading = _red_light(analyzer).board.reading("head-right")
    assert reading.state is SignalState.RED
    assert analyzer.registration is not None and analyzer.registration.ok
