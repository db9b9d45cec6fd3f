"""The class-agnostic static-change detector on a real background: what must and must not count."""

import cv2
import numpy as np
import pytest

from edge.data import data_dir
from edge.static_change import StaticChangeDetector, StaticChangeParams

FPS = 4.0


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray]:
    """A real plaza frame (OpenCV's vtest) and a real textured patch (from the bus photo)."""
    cap = cv2.VideoCapture(str(data_dir() / "videos" / "opencv_vtest_pedestrians.avi"))
    ok, bg = cap.read()
    cap.release()
    assert ok
    bus = cv2.imread(str(data_dir() / "images" / "ultralytics_bus.jpg"))
    assert bus is not None
    return bg, bus[700:760, 300:350].copy()


def feed(det: StaticChangeDetector, frames, t0: float = 0.0) -> float:
    t = t0
    for img in frames:
        det.update(img, t)
        t += 1 / FPS
    return t


def test_object_left_on_the_ground_is_found_with_its_appearance_time(scene):
    bg, patch = scene
    det = StaticChangeDetector(StaticChangeParams(static_seconds=2.0))
    t = feed(det, [bg] * 8)  # 2 s of empty scene
    with_obj = bg.copy()
    with_obj[400:460, 300:350] = patch
    appeared = t
    feed(det, [with_obj] * 12, t)
    objs = det.objects()
    assert len(objs) == 1
    x1, y1, x2, y2 = objs[0].box
    assert abs(x1 - 300) < 20 and abs(y1 - 400) < 20 and abs(x2 - 350) < 20 and abs(y2 - 460) < 20
    assert objs[0].first_seen == pytest.approx(appeared)
    # Masked by a person box over it: not reported.
    assert det.objects(np.array([[280, 380, 370, 480]], np.float32)) == []


def test_not_static_before_static_seconds_and_gone_when_removed(scene):
    bg, patch = scene
    det = StaticChangeDetector(StaticChangeParams(static_seconds=3.0))
    t = feed(det, [bg] * 8)
    with_obj = bg.copy()
    with_obj[400:460, 300:350] = patch
    t = feed(det, [with_obj] * 8, t)  # 2 s < 3 s
    assert det.objects() == []
    t = feed(det, [with_obj] * 8, t)
    assert len(det.objects()) == 1
    feed(det, [bg] * 4, t)  # picked up
    assert det.objects() == []


def test_lighting_change_and_shadow_are_not_objects(scene):
    bg, _ = scene
    det = StaticChangeDetector(StaticChangeParams(static_seconds=1.0))
    t = feed(det, [bg] * 8)
    # A cloud: the whole scene 35 % darker and a bit bluer, held for 5 s.
    dim = np.clip(bg.astype(np.float32) * np.array([0.7, 0.65, 0.62]) + 4, 0, 255).astype(np.uint8)
    t = feed(det, [dim] * 20, t)
    assert det.objects() == []
    # A hard-edged shadow over a quarter of the frame, held for 5 s.
    shadow = bg.copy()
    h, w = bg.shape[:2]
    shadow[h // 2 :, : w // 2] = (shadow[h // 2 :, : w // 2] * 0.55).astype(np.uint8)
    feed(det, [shadow] * 20, t)
    assert det.objects() == []


def test_camera_move_relearns_instead_of_reporting(scene):
    bg, _ = scene
    det = StaticChangeDetector(StaticChangeParams(static_seconds=1.0))
    t = feed(det, [bg] * 8)
    moved = np.roll(bg, (6, 9), axis=(0, 1))
    feed(det, [moved] * 12, t)
    assert det.objects() == []
    assert det.camera_moves + det.scene_cuts >= 1
