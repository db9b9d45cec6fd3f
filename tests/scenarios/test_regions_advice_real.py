"""Commissioning advice for the regions-of-interest pass on real footage (`edge regions-advice`):
on where the road users in the zones and at the lines are small, off where they are large.

Measured (docs/benchmarks.md, "Regions-of-interest pass"): on the Hanoi junction (640x480, riders
queued at the stop line 20-40 px tall) the pass at scale 2 finds more red-light runners; on the
Hai Phong junction (1006x720, riders at the stop line ~80-150 px tall) nothing small is there to find.
"""

from __future__ import annotations

import pytest

from edge.analyze import make_detector
from edge.config import DetectorConfig, camera_detector, load_camera_config
from edge.data import video_path
from edge.regions import regions_advice
from edge.sources import VideoFileSource
from tests.support import REPO_ROOT

SECONDS = 5.0


def advice(name: str, seconds: float = SECONDS):
    cam = load_camera_config(REPO_ROOT / "configs" / "cameras" / f"{name}.yaml")
    video = video_path(cam.camera.source or "")
    if not video.is_file():
        pytest.skip(f"no {video} (EDGE_DATA_DIR)")
    cfg = camera_detector(DetectorConfig(), cam)
    detector = make_detector(cfg)
    dets, wh = [], (0, 0)
    for frame in VideoFileSource(video, cam.camera.analysis_fps).frames():
        if frame.pts > seconds:
            break
        wh = (frame.image.shape[1], frame.image.shape[0])
        dets.append(detector(frame.image))
    return regions_advice(cam.scene, wh, dets, cfg.long_side)


def test_small_riders_at_the_stop_line_get_the_pass_upscaled():
    a = advice("hanoi_lythuongkiet_hangbai_intersection_trafficlight")
    print(a)
    assert a.scale == 2.0, a  # a 640-wide camera: tiles upscaled twice


def test_a_camera_whose_riders_are_large_at_its_line_keeps_the_pass_off():
    a = advice("vn_haiphong_intersection_cctv_signals_stopline", seconds=7.2)
    print(a)
    assert a.scale is None and a.boxes >= 30, a  # judged, not too few seen
