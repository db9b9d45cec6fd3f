"""Detection ROI (edge.roi): the crop from the scene's geometry, and boxes mapped back to the frame."""

from __future__ import annotations

import numpy as np

from edge.detections import Detections
from edge.roi import RoiDetector, detection_roi, scene_extent, to_frame
from edge.scene import SceneConfig


def scene(**kw) -> SceneConfig:
    return SceneConfig(reference_size=(1000, 500), **kw)


ZONE = {"id": "z", "kind": "no_parking", "polygon": [(400, 200), (600, 200), (600, 300), (400, 300)]}


def test_no_geometry_is_full_frame() -> None:
    assert scene_extent(scene()) is None
    assert detection_roi(scene(), (1000, 500)) is None


def test_margin_is_a_share_of_each_side() -> None:
    # 10% of 1000 wide = 100 px, of 500 high = 50 px, on each side.
    assert detection_roi(scene(zones=[ZONE]), (1000, 500), margin=0.10) == (300, 150, 700, 350)


def test_lines_and_lamps_count_and_clamp_to_the_frame() -> None:
    s = scene(
        zones=[ZONE],
        lines=[{"id": "l", "points": [(20, 260), (500, 260)]}],
        signals=[{"id": "s", "lamps": [{"color": "red", "box": (550, 10, 560, 20)}]}],
    )
    # Left edge 20 - 100 and top 10 - 50 clamp to 0.
    assert detection_roi(s, (1000, 500), margin=0.10, max_area_fraction=1.0) == (0, 0, 700, 350)


def test_a_box_not_clearly_smaller_than_the_frame_is_full_frame() -> None:
    big = dict(ZONE, polygon=[(50, 20), (950, 20), (950, 480), (50, 480)])
    assert detection_roi(scene(zones=[big]), (1000, 500), max_area_fraction=0.7) is None


def test_two_streams_scale_the_geometry() -> None:
    # The same scene on a 640x360 sub-stream and a 2000x1000 main stream: the same region.
    s = scene(zones=[ZONE])
    assert detection_roi(s, (2000, 1000)) == (600, 300, 1400, 700)
    x1, y1, x2, y2 = detection_roi(s, (640, 360))
    assert (x1, y1, x2, y2) == (192, 108, 448, 252)


def test_boxes_map_back_to_frame_coordinates() -> None:
    d = Detections(np.array([[10, 20, 30, 40]], np.float32), np.array([0.9], np.float32), np.array([2], np.int32))
    out = to_frame(d, (300, 150, 700, 350))
    assert out.xyxy.tolist() == [[310, 170, 330, 190]]
    assert out.xyxy.dtype == np.float32


def test_the_detector_sees_the_crop_only() -> None:
    seen: list[tuple[int, ...]] = []

    def detect(image: np.ndarray) -> Detections:
        seen.append(image.shape)
        # A box at the crop's top-left corner, the crop's first pixel value as its confidence.
        return Detections(
            np.array([[0, 0, 5, 5]], np.float32), np.array([image[0, 0, 0] / 255], np.float32), np.array([0], np.int32)
        )

    image = np.zeros((500, 1000, 3), np.uint8)
    image[150, 300] = 255
    roi = RoiDetector(detect, scene(zones=[ZONE]), margin=0.10, max_area_fraction=0.7)
    out = roi(image)
    assert seen == [(200, 400, 3)]
    assert out.xyxy.tolist() == [[300, 150, 305, 155]]
    assert out.confidence[0] == 1.0
    # Without geometry the frame goes through whole.
    assert RoiDetector(detect, scene(), margin=0.1, max_area_fraction=0.7)(image).xyxy.tolist() == [[0, 0, 5, 5]]
    assert seen[-1] == (500, 1000, 3)


def test_motion_outside_the_roi_does_not_wake_the_detector() -> None:
    from edge.motion import MotionGate

    roi = RoiDetector(lambda image: Detections.empty(), scene(zones=[ZONE]), margin=0.10, max_area_fraction=0.7)
    gate = MotionGate(max_skip_s=100.0)
    still = np.full((500, 1000, 3), 100, np.uint8)
    assert gate.should_detect(roi.crop(still), 0.0)  # the first frame always runs
    outside = still.copy()
    outside[0:120, 0:250] = 250  # a big change, all of it left of / above the ROI
    assert not gate.should_detect(roi.crop(outside), 0.2)
    inside = still.copy()
    inside[220:280, 450:550] = 250
    assert gate.should_detect(roi.crop(inside), 0.4)
