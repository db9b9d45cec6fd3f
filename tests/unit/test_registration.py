"""Camera motion compensation (edge/registration.py) on a real frame moved by known amounts."""

import cv2
import numpy as np
import pytest

from edge.data import data_dir
from edge.registration import FrameRegistrar, RegistrationParams, warp_boxes


@pytest.fixture(scope="module")
def plaza() -> np.ndarray:
    cap = cv2.VideoCapture(str(data_dir() / "videos" / "opencv_vtest_pedestrians.avi"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def moved(img: np.ndarray, dx: float, dy: float, deg: float = 0.0) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def test_small_drift_is_measured_and_mapped_back(plaza):
    reg = FrameRegistrar()
    reg.update(plaza, 0.0)
    r = reg.update(moved(plaza, 6.0, -4.0, 0.5), 0.2)
    assert r.ok and not r.moved and r.inliers >= 40
    assert abs(abs(r.rotation_deg) - 0.5) < 0.15
    # A point of the moved frame maps back to where it was in the reference.
    h, w = plaza.shape[:2]
    fwd = cv2.getRotationMatrix2D((w / 2, h / 2), 0.5, 1.0)
    fwd[:, 2] += (6.0, -4.0)
    p = np.array([[300.0, 250.0]])
    in_frame = p @ fwd[:, :2].T + fwd[:, 2]
    assert np.abs(r.to_reference(in_frame) - p).max() < 1.5
    assert np.abs(r.to_frame(p) - in_frame).max() < 1.5


def test_moving_people_do_not_pull_the_registration(plaza):
    reg = FrameRegistrar()
    reg.update(plaza, 0.0)
    frame = plaza.copy()
    # A fifth of the frame replaced by a shifted copy of itself (a bus passing): RANSAC keeps the rest.
    frame[200:400, 100:400] = plaza[210:410, 130:430]
    r = reg.update(frame, 0.2)
    assert r.ok and r.shift_px < 1.0


def test_large_move_becomes_camera_moved_once_and_clears_when_back(plaza):
    reg = FrameRegistrar(RegistrationParams(moved_seconds=1.0, back_seconds=1.0))
    reg.update(plaza, 0.0)
    elsewhere = moved(plaza, 160, 90)  # a PTZ preset away: a fifth of the frame
    states = [reg.update(elsewhere, t / 5).moved for t in range(1, 12)]
    assert states[:4] == [False] * 4 and all(states[5:])  # 1 s of it, then camera_moved
    assert reg.transitions == 1
    back = [reg.update(plaza, 3 + t / 5).moved for t in range(8)]
    assert back[0] and not back[-1] and reg.transitions == 2


def test_a_frame_with_no_texture_registers_nothing_and_never_moves():
    flat = np.full((480, 640, 3), 120, np.uint8)
    reg = FrameRegistrar()
    assert reg.update(flat, 0.0).available is False
    r = reg.update(flat, 5.0)
    assert r.ok and not r.moved and r.identity


def test_boxes_are_warped_by_their_corners():
    m = np.array([[1.0, 0.0, 10.0], [0.0, 1.0, -5.0]])
    assert warp_boxes(m, np.array([[0, 0, 20, 10]], np.float32)).tolist() == [[10.0, -5.0, 30.0, 5.0]]
