"""Commissioning advice for the regions-of-interest pass (edge.regions.regions_advice; pure:
scripted boxes). The rule a deployer applies: turn the pass on when at least a fifth of the road
users in the zones and at the lines are under 6% of the frame height; at native pixels (scale 1)
when the camera is much wider than the detector's input, else upscaled twice."""

from __future__ import annotations

import numpy as np

from edge.detections import Detections
from edge.regions import regions_advice
from edge.scene import SceneConfig

NAMES = ("person", "bicycle", "car", "motorcycle")
SCENE = SceneConfig.model_validate({"reference_size": [640, 480], "lines": [{"id": "stop", "points": [[100, 400], [540, 400]]}]})


def frame(heights: list[float], x: float = 300.0, bottom: float = 400.0, cls: int = 3) -> Detections:
    xyxy = np.array([[x + 30 * i, bottom - h, x + 30 * i + 20, bottom] for i, h in enumerate(heights)], np.float32)
    return Detections(xyxy, np.full(len(heights), 0.8, np.float32), np.full(len(heights), cls, np.int32), NAMES)


def test_small_road_users_at_the_line_turn_the_pass_on():
    dets = [frame([20, 25, 100, 120]) for _ in range(10)]  # half of them under 0.06 * 480 = 28.8 px
    a = regions_advice(SCENE, (640, 480), dets, 640)
    assert (a.boxes, a.small, a.scale) == (40, 20, 2.0)
    # a 1280x960 camera with the same scene: its native pixels are sharper than the full frame's
    big = [frame([40, 50, 200, 240], x=600, bottom=800) for _ in range(10)]
    assert regions_advice(SCENE, (1280, 960), big, 640).scale == 1.0


def test_large_road_users_keep_it_off_and_far_ones_do_not_count():
    dets = [frame([100, 120, 90, 110]) for _ in range(10)]
    assert regions_advice(SCENE, (640, 480), dets, 640).scale is None
    # small boxes far from the line and the zones (the pass would not tile there): not counted
    far = [frame([100, 120, 90, 110]) for _ in range(10)] + [frame([10, 12, 14, 15], bottom=100) for _ in range(30)]
    a = regions_advice(SCENE, (640, 480), far, 640)
    assert a.scale is None and a.small == 0 and a.boxes == 40


def test_too_few_seen_or_no_regions_is_no_advice():
    assert regions_advice(SCENE, (640, 480), [frame([10, 12])], 640).scale is None
    bare = SceneConfig.model_validate({"reference_size": [640, 480]})
    a = regions_advice(bare, (640, 480), [frame([10, 12, 14, 15]) for _ in range(20)], 640)
    assert a.scale is None and "no zones or lines" in a.reason
    cars = [frame([10, 12, 14, 15], cls=2) for _ in range(20)]  # cars are not the small road users it is for
    assert regions_advice(SCENE, (640, 480), cars, 640).boxes == 0
