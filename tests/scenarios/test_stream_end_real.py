"""A stream that ends right after an act loses no act (real footage).

The Hanoi clip's labels (tests/scenarios/labels/hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml)
have a motorbike crossing the stop line on red at frame 128 (x ~450). The stream is cut two frames
later: the act is judged but its event waits for the rider to be past the line, and the end of the
stream releases it (edge.rules.base.Flushable) instead of dropping it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.analyze import make_detector
from edge.config import DetectorConfig, load_camera_config
from edge.data import video_path
from edge.pipeline import CameraAnalyzer
from edge.sources import VideoFileSource
from tests.support import REPO_ROOT

CONFIG = REPO_ROOT / "configs" / "cameras" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml"
ACT_FRAME, ACT_X, LAST_FRAME = 128, 450, 130


def test_a_red_light_act_two_frames_before_the_stream_ends_is_reported():
    cam = load_camera_config(CONFIG)
    video = video_path(cam.camera.source or "")
    if not video.is_file():
        pytest.skip(f"no {video} (EDGE_DATA_DIR)")
    analyzer = CameraAnalyzer("test", cam, make_detector(DetectorConfig()), deterministic_ids=True)
    base = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    during: list = []
    for i, frame in enumerate(VideoFileSource(video, cam.camera.analysis_fps).frames()):
        during += analyzer.process(frame, base + timedelta(seconds=frame.pts))
        if i == LAST_FRAME:
            break
    at_end = analyzer.finish(flush_rules=True)
    fps = cam.camera.analysis_fps

    def near_act(rec) -> bool:
        e = rec.event
        x = (e.objects[0].box[0] + e.objects[0].box[2]) / 2
        frame_no = (e.started_at - base).total_seconds() * fps
        return e.type.value == "red_light" and abs(frame_no - ACT_FRAME) <= 8 and abs(x - ACT_X) <= 60

    assert not any(near_act(r) for r in during)  # held: the rider is not yet past the line
    assert [near_act(r) for r in at_end].count(True) == 1, [r.event.type.value for r in at_end]
    assert analyzer.finish(flush_rules=True) == []  # once
