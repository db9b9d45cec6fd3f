"""The reference view is the snapshot the scene was drawn on (`scene.reference_image`): a camera that
starts off its preset is mapped back onto its drawn scene, one that looks elsewhere is camera_moved,
and a view lit otherwise (night against a daytime snapshot) falls back to the first frame.
Real frames of the OpenCV plaza clip and the Hai Phong junction, moved by known amounts."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from contract.configfile import ConfigError
from edge.config import camera_run_problems, load_camera_config
from edge.data import data_dir
from edge.registration import FrameRegistrar, RegistrationParams


def first_frame(name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    cap = cv2.VideoCapture(str(data_dir() / "videos" / name))
    ok, frame = cap.read()
    cap.release()
    assert ok, name
    return frame if size is None else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def plaza() -> np.ndarray:
    return first_frame("opencv_vtest_pedestrians.avi")


def moved(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def test_a_camera_starting_off_its_preset_is_mapped_back_onto_the_drawn_snapshot(plaza):
    off = moved(plaza, 14.0, -9.0)  # came back from a tour 14 px right, 9 px up
    point = np.array([[300.0, 250.0]])  # a stop-line end drawn on the snapshot
    for_anchor = FrameRegistrar(anchor=plaza)
    first = for_anchor.update(off, 0.0)
    assert for_anchor.anchored and first.ok and not first.moved
    assert np.abs(first.to_frame(point) - (point + (14.0, -9.0))).max() < 1.5
    # Later frames are registered to the first and composed with its placement: 3 px more sway.
    later = for_anchor.update(moved(plaza, 17.0, -7.0), 0.2)
    assert later.ok and np.abs(later.to_frame(point) - (point + (17.0, -7.0))).max() < 1.5
    # Without the snapshot the shifted first frame is the reference: the line stays where it was drawn.
    plain = FrameRegistrar()
    assert plain.update(off, 0.0).identity
    assert np.abs(plain.update(moved(plaza, 17.0, -7.0), 0.2).to_frame(point) - (point + (3.0, 2.0))).max() < 1.5


def test_the_snapshot_may_be_drawn_at_another_resolution_of_the_same_view(plaza):
    h, w = plaza.shape[:2]
    main_stream = cv2.resize(plaza, (w * 2, h * 2), interpolation=cv2.INTER_CUBIC)
    r = FrameRegistrar(anchor=main_stream).update(moved(plaza, -10.0, 6.0), 0.0)
    assert r.ok and abs(r.shift_px - np.hypot(10.0, 6.0)) < 1.5


def test_a_start_beyond_tolerance_of_the_snapshot_is_camera_moved_from_the_start(plaza):
    reg = FrameRegistrar(RegistrationParams(moved_seconds=1.0), anchor=plaza)
    away = moved(plaza, 90.0, 40.0)  # registers, but 98 px off: the zones would not be on the road
    states = [reg.update(away, t / 5) for t in range(8)]
    assert reg.anchored
    assert not any(s.ok for s in states[1:]) and states[-1].moved and reg.transitions == 1


def test_a_view_lit_like_the_snapshot_that_does_not_match_it_is_looking_elsewhere(plaza):
    other = first_frame("vn_haiphong_truccat_junction_sidewalk_vendor_elevated.mp4", plaza.shape[1::-1])
    assert abs(other.mean() - plaza.mean()) <= 0.35 * plaza.mean()  # the premise: lit alike
    reg = FrameRegistrar(RegistrationParams(moved_seconds=1.0), anchor=plaza)
    states = [reg.update(other, t / 5).moved for t in range(10)]
    assert not reg.anchored and states[-1] and not states[0]
    # The camera is put back on its preset: placed at the next try, and back after back_seconds.
    back = [reg.update(plaza, 2 + t / 5) for t in range(16)]
    assert reg.anchored and back[-1].ok and not back[-1].moved


def test_a_night_view_that_does_not_match_a_daytime_snapshot_falls_back_to_the_first_frame(plaza):
    night = (plaza.astype(np.float32) * 0.25).astype(np.uint8)
    night = cv2.GaussianBlur(night, (0, 0), 2.5)  # dim and soft: another picture to ORB
    other = first_frame("vn_haiphong_truccat_junction_sidewalk_vendor_elevated.mp4", plaza.shape[1::-1])
    reg = FrameRegistrar(RegistrationParams(moved_seconds=1.0), anchor=other)  # does not match at all
    states = [reg.update(night, t / 5) for t in range(12)]
    assert not reg.anchored
    assert all(s.ok and not s.moved for s in states)  # a dark view is not taken for a move


def write_camera(tmp: Path, picture: np.ndarray | None, size: tuple[int, int]) -> Path:
    if picture is not None:
        cv2.imwrite(str(tmp / "snapshot.jpg"), picture)
    (tmp / "cam.yaml").write_text(
        "camera: {id: plaza, source: opencv_vtest_pedestrians.avi}\n"
        f"scene:\n  reference_size: [{size[0]}, {size[1]}]\n  reference_image: snapshot.jpg\n"
        "  zones: [{id: walk, kind: sidewalk, polygon: [[10, 10], [200, 10], [200, 200]]}]\n",
        encoding="utf-8",
    )
    return tmp / "cam.yaml"


def test_check_config_names_a_missing_or_mismatched_reference_image(tmp_path, plaza):
    h, w = plaza.shape[:2]
    path = write_camera(tmp_path, None, (w, h))
    cam = load_camera_config(path)
    assert cam.scene.reference_image == (tmp_path / "snapshot.jpg").resolve()  # relative to the config
    assert any("scene.reference_image: picture not found" in p for p in camera_run_problems(path, cam))
    path = write_camera(tmp_path, plaza, (w * 2, h * 2))
    problems = camera_run_problems(path, load_camera_config(path))
    assert any(f"scene.reference_image: {tmp_path / 'snapshot.jpg'} is {w}x{h}, but scene.reference_size" in p
               for p in problems), problems
    path = write_camera(tmp_path, plaza, (w, h))
    assert not [p for p in camera_run_problems(path, load_camera_config(path)) if "reference_image" in p]
    (tmp_path / "cam.yaml").write_text(
        (tmp_path / "cam.yaml").read_text().replace("reference_image: snapshot.jpg", "reference_image: [1]")
    )
    with pytest.raises(ConfigError, match="scene.reference_image"):
        load_camera_config(tmp_path / "cam.yaml")


def test_the_analyzer_moves_its_zones_onto_a_camera_that_starts_off_its_preset(tmp_path, plaza):
    """The whole pipeline, real detector: the zone drawn on the snapshot is where it belongs in the
    shifted frames, and the frame is not taken for a move."""
    import time
    from datetime import UTC, datetime

    from edge.data import weights_path
    from edge.detector import YoloDetector
    from edge.frames import Frame
    from edge.pipeline import CameraAnalyzer

    h, w = plaza.shape[:2]
    cam = load_camera_config(write_camera(tmp_path, plaza, (w, h)))
    analyzer = CameraAnalyzer("unit", cam, YoloDetector(weights_path("yolo11n.onnx")), motion=None)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(3):
        analyzer.process(Frame(moved(plaza, 20.0 + i, 12.0), i / 5, time.time(), i), start)
    zone = analyzer._zones[0].polygon
    assert np.abs(zone - np.array([[10, 10], [200, 10], [200, 200]]) - (22.0, 12.0)).max() < 2.0
    assert not analyzer.camera_moved


def test_a_new_scene_versions_picture_becomes_the_reference_of_the_running_analysis(tmp_path, plaza):
    """A console version comes with the picture it was drawn on (edge.scene_sync): the running
    analyzer takes it at the swap, without a restart, and its zones are placed on it."""
    import time
    from datetime import UTC, datetime

    from edge.data import weights_path
    from edge.detector import YoloDetector
    from edge.frames import Frame
    from edge.pipeline import CameraAnalyzer

    h, w = plaza.shape[:2]
    drawn = load_camera_config(write_camera(tmp_path, plaza, (w, h)))
    plain = drawn.model_copy(update={"scene": drawn.scene.model_copy(update={"reference_image": None})})
    analyzer = CameraAnalyzer("unit", plain, YoloDetector(weights_path("yolo11n.onnx")), motion=None)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    drawn_zone = np.array([[10, 10], [200, 10], [200, 200]])
    for i in range(2):  # no picture: the shifted first frame is the reference, the zone stays put
        analyzer.process(Frame(moved(plaza, 20.0 + i, 12.0), i / 5, time.time(), i), start)
    assert np.abs(analyzer._zones[0].polygon - drawn_zone - (1.0, 0.0)).max() < 2.0
    analyzer.use_camera(drawn)  # the version drawn on `plaza`
    for i in range(2, 4):
        analyzer.process(Frame(moved(plaza, 20.0 + i, 12.0), i / 5, time.time(), i), start)
    assert analyzer.registrar.anchored
    assert np.abs(analyzer._zones[0].polygon - drawn_zone - (23.0, 12.0)).max() < 2.0
    assert not analyzer.camera_moved
